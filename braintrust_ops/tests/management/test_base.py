"""Every command of the app parses its options and answers --help in a process of its own.

The list of commands comes from Django (the app's ``management/commands``), so a new command is
checked the day it is added.
"""

import subprocess
import sys

import pytest
from django.core.management import get_commands

from braintrust_ops.tests.paths import HOST_ROOT

APP_COMMANDS = sorted(name for name, app in get_commands().items() if app == "braintrust_ops")


def test_the_app_offers_its_commands():
    assert {"tag_logs", "push_to_datasets", "backup_logs"} <= set(APP_COMMANDS)


@pytest.mark.parametrize("command", APP_COMMANDS)
def test_every_command_has_help(command):
    result = subprocess.run(
        [sys.executable, "manage.py", command, "--help"], cwd=HOST_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"manage.py {command}" in result.stdout
