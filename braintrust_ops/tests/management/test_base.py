import subprocess
import sys
from pathlib import Path

import pytest
from braintrust_ops.tests.paths import HOST_ROOT

ROOT = HOST_ROOT


@pytest.mark.parametrize("command", ["tag_logs", "push_to_datasets", "backup_logs", "prune_braintrust_ops", "braintrust_sandbox"])
def test_every_command_has_help(command):
    result = subprocess.run(
        [sys.executable, "manage.py", command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"manage.py {command}" in result.stdout


def test_production_settings_install_the_app_alone_and_never_the_sandbox():
    """Sefaria's production settings add braintrust_ops; the sandbox is a development app of its own."""
    import subprocess
    import sys
    from pathlib import Path

    root = HOST_ROOT
    probe = (
        "import django; django.setup(); from django.conf import settings; "
        "from django.core.management import get_commands; "
        "print(sorted(a for a in settings.INSTALLED_APPS if a.startswith('braintrust')), 'braintrust_sandbox' in get_commands())"
    )
    env = {**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "sefaria.settings"}
    output = subprocess.run([sys.executable, "-c", probe], cwd=root, env=env, capture_output=True, text=True, check=True)
    assert output.stdout.split() == ["['braintrust_ops']", "False"]
