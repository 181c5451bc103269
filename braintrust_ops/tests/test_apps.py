"""The app as a guest in a host project: installing and importing it leaves the host's logging alone."""

import json
import subprocess
import sys
import textwrap

from braintrust_ops.tests.paths import HOST_ROOT

# A host whose settings configure no logging; the app and every module of it are imported, its commands loaded.
PROBE = textwrap.dedent(
    """
    import json, logging, pkgutil, importlib
    import django, structlog
    from django.conf import settings
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
            "django.contrib.sessions", "django.contrib.messages", "braintrust_ops",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        LOGGING_CONFIG=None,
    )
    django.setup()
    import braintrust_ops
    for module in pkgutil.walk_packages(braintrust_ops.__path__, "braintrust_ops."):
        if ".tests" not in module.name:
            importlib.import_module(module.name)
    from django.core.management import load_command_class
    for command in ("tag_logs", "push_to_datasets", "backup_logs", "prune_braintrust_ops"):
        load_command_class("braintrust_ops", command)
    print(json.dumps({
        "structlog_configured": structlog.is_configured(),
        "root_handlers": len(logging.getLogger().handlers),
        "app_handlers": len(logging.getLogger("braintrust_ops").handlers),
        "root_level": logging.getLogger().level,
    }))
    """
)


def test_installing_and_importing_the_app_configures_neither_logging_nor_structlog():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=HOST_ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == {
        "structlog_configured": False,
        "root_handlers": 0,
        "app_handlers": 0,
        "root_level": 30,  # WARNING: logging's own default, untouched
    }
