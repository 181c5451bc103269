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

from tests.sefaria_layout import (
    APP_DIRECTORIES,
    LOCAL_SETTINGS_LINES,
    ROOT,
    SEFARIA_COMMAND_OPTIONS,
    app_tables_in_host_database,
    build,
)


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


# --- the stand-in behaves as the host does (shared/reference/sefaria-host.md) ------------------------------


@pytest.fixture(scope="module")
def standin():
    with tempfile.TemporaryDirectory() as directory:
        yield build(Path(directory) / "Sefaria-Project")


def _manage(directory: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    command = [sys.executable, "manage.py", *arguments]
    return subprocess.run(
        command, cwd=directory, env={**env, **environment}, capture_output=True, text=True, timeout=120
    )


def test_the_hosts_own_system_checks_fail_without_its_mongodb_as_sefarias_do(standin):
    result = _manage(standin, "check")
    assert result.returncode != 0 and "ConnectionRefusedError" in result.stderr


def test_the_apps_commands_and_checks_run_in_the_host_without_its_mongodb(standin):
    assert _manage(standin, "check", "--tag", "models", "braintrust_ops").returncode == 0
    assert _manage(standin, "migrate", "braintrust_ops", "--skip-checks", "-v", "0").returncode == 0
    result = _manage(standin, "prune_braintrust_ops", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "[dry run] Would delete 0 tagged logs" in result.stdout


def test_the_hosts_settings_ignore_database_url(standin):
    probe = "import django; django.setup(); from django.db import connection; print(connection.settings_dict['NAME'])"
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env |= {"DJANGO_SETTINGS_MODULE": "sefaria.settings", "DATABASE_URL": "sqlite:////elsewhere.sqlite3"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=standin, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == str(standin / "host.sqlite3")


def test_the_hosts_urlconf_has_no_admin_route_so_the_admin_tests_name_their_own(standin):
    probe = (
        "import django; django.setup(); from django.urls import reverse, NoReverseMatch\n"
        "try:\n    reverse('admin:index')\nexcept NoReverseMatch:\n    print('no admin')\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env["DJANGO_SETTINGS_MODULE"] = "sefaria.settings"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=standin, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "no admin"


def test_the_local_settings_lines_leave_an_image_without_the_app_alone(tmp_path):
    """Run where braintrust_ops cannot be imported (outside this repository), then where it can."""
    probe = LOCAL_SETTINGS_LINES + "print('BRAINTRUST_OPS' in dir())\n"
    without = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert without.stdout.strip() == "False"
    with_app = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert with_app.stdout.strip() == "True"


def test_a_test_that_wrote_into_the_hosts_own_database_is_found(layout_dir):
    layout = build(layout_dir)
    assert app_tables_in_host_database(layout) == []
    assert _manage(layout, "migrate", "braintrust_ops", "--skip-checks", "-v", "0").returncode == 0
    assert "braintrust_ops_taggedlog" in app_tables_in_host_database(layout)
