"""The app's suite under Sefaria-Project's pytest conventions (tests/sefaria_layout.py): Sefaria's
settings module, its path-tail python_files patterns, no testpaths, no plugin registration.

Here the collection is compared; CI runs the whole suite that way on Sefaria's stack (.ci/run).
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.sefaria_layout import APP_DIRECTORIES, ROOT, SEFARIA_COMMAND_OPTIONS, build


def _collected(directory, *arguments) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *arguments]
    result = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 5), result.stdout[-3000:] + result.stderr[-3000:]  # 5: nothing collected
    return sorted(line for line in result.stdout.splitlines() if "::" in line)


@pytest.fixture
def layout_dir():
    """Outside tmp_path: the copied tests hold fake keys, which the key guard looks for in tmp_path."""
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory) / "Sefaria-Project"


def test_sefarias_pytest_ini_with_the_apps_lines_collects_every_test_this_repository_does(layout_dir):
    sefaria = build(layout_dir)
    collected_here = _collected(ROOT, *APP_DIRECTORIES)
    assert len(collected_here) > 500
    assert _collected(sefaria, *SEFARIA_COMMAND_OPTIONS, *APP_DIRECTORIES) == collected_here


def test_without_the_apps_python_files_lines_sefaria_would_run_none_of_its_tests(layout_dir):
    sefaria = build(layout_dir, with_app=False)
    assert _collected(sefaria, *APP_DIRECTORIES) == []
