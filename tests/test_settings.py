"""The stand-in settings: production's install the app alone; the sandbox is a development app of its own."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import django; django.setup(); from django.conf import settings; "
    "from django.core.management import get_commands; "
    "print(','.join(a for a in settings.INSTALLED_APPS if a.startswith('braintrust')), "
    "'braintrust_sandbox' in get_commands())"
)


def _installed(settings_module: str) -> list[str]:
    """The braintrust apps the settings install, and whether the sandbox's command exists."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module}
    probe = [sys.executable, "-c", PROBE]
    return subprocess.run(probe, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.split()


def test_production_settings_install_the_app_alone_and_never_the_sandbox():
    assert _installed("sefaria.settings") == ["braintrust_ops", "False"]


def test_development_settings_add_the_sandbox_and_its_command():
    assert _installed("sefaria.settings_dev") == ["braintrust_ops,braintrust_ops_sandbox", "True"]
