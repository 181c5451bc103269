import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", ["tag_logs", "push_to_datasets", "backup_logs", "prune_braintrust_ops", "braintrust_sandbox"])
def test_every_command_has_help(command):
    result = subprocess.run(
        [sys.executable, "manage.py", command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"manage.py {command}" in result.stdout
