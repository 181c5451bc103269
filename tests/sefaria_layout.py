"""A directory that behaves like Sefaria-Project where it matters to a guest app, with this app dropped in
as the README's checklist says.

The host's parts are ``tests/sefaria_standin/`` (our own files, each written from a fact in
``shared/reference/sefaria-host.md``): an empty ``ROOT_URLCONF`` with django-hosts, the admin at
``ADMIN_PATH``, settings that ignore ``DATABASE_URL``, a system check that fails without MongoDB, Sentry
started only by gunicorn with the host's ``before_send``. This module copies them beside the app and the
sandbox, writes the deployment's ``local_settings.py`` (its database fixed in the file) and Sefaria's
``pytest.ini``, and applies the checklist's lines. CI installs Sefaria's versions and runs the app's
suite there with Sefaria's own pytest command line.

    python -m tests.sefaria_layout <directory> [--database URL]     builds the layout
    python -m tests.sefaria_layout --untouched <directory>          fails if the host's own database
                                                                    holds any of the app's tables
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import dj_database_url

ROOT = Path(__file__).resolve().parents[1]
STANDIN = Path(__file__).resolve().parent / "sefaria_standin"
# The patterns the checklist adds to Sefaria's pytest.ini; `*` in a pattern with a slash also crosses directories.
APP_PYTHON_FILES = (
    "braintrust_ops/tests/test_*.py",
    "braintrust_ops/tests/*/test_*.py",
    "braintrust_ops_sandbox/tests/test_*.py",
)
# A sample of Sefaria's own entries, so the file reads as theirs does.
SEFARIA_PYTHON_FILES = ("sefaria/tests/*_test.py", "reader/tests/*_test.py", "reader/tests/test_*.py")
# Sefaria's CI: `pytest -v --timeout=600 --reuse-db -m "not deep and not failing" ./sefaria ./sso ./reader`
# (build/ci/createJobFromRollout.sh).
SEFARIA_COMMAND_OPTIONS = ("--reuse-db", "-m", "not deep and not failing")
APP_DIRECTORIES = ("./braintrust_ops", "./braintrust_ops_sandbox")
# Nothing listens here (a port below 1024 that no test server takes): the host's MongoDB is down.
MONGO_PORT = 9

# The checklist's lines, as the README gives them.
INSTALLED_APPS_LINE = 'INSTALLED_APPS += ("braintrust_ops",)\n'
LOCAL_SETTINGS_LINES = """\
try:
    from braintrust_ops.conf import settings_from_environment
except ImportError:  # an image built without braintrust_ops
    pass
else:
    BRAINTRUST_OPS = settings_from_environment()
"""


def pytest_ini(*, with_app: bool = True) -> str:
    patterns = SEFARIA_PYTHON_FILES + (APP_PYTHON_FILES if with_app else ())
    return (
        "[pytest]\n"
        "markers =\n    deep: marks tests as slow\n    failing: marks tests as known no passing\n"
        "DJANGO_SETTINGS_MODULE = sefaria.settings\n"
        "python_files =\n" + "".join(f"    {pattern}\n" for pattern in patterns)
    )


def local_settings(database: dict) -> str:
    """The deployment's ``local_settings.py``: a fixed database, the admin's path, MongoDB's address."""
    return (
        f"DATABASES = {{'default': {database!r}}}\n"
        "ADMIN_PATH = 'somethingsomething'\n"
        f"MONGO_HOST = '127.0.0.1'\nMONGO_PORT = {MONGO_PORT}\n"
    )


def build(directory: Path, *, with_app: bool = True, database_url: str | None = None) -> Path:
    """The stand-in host in ``directory``, the app and its sandbox beside it, the checklist applied."""
    directory.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "README.md")
    shutil.copytree(STANDIN, directory, ignore=ignore, dirs_exist_ok=True)
    for package in ("braintrust_ops", "braintrust_ops_sandbox"):
        shutil.copytree(ROOT / package, directory / package, ignore=ignore, dirs_exist_ok=True)
    database = dj_database_url.parse(database_url or f"sqlite:///{directory / 'host.sqlite3'}")
    settings = directory / "sefaria" / "local_settings.py"
    settings.write_text(local_settings({key: value for key, value in database.items() if key != "CONN_HEALTH_CHECKS"}))
    if with_app:
        with (directory / "sefaria" / "settings.py").open("a") as file:
            file.write("\n" + INSTALLED_APPS_LINE)
        with settings.open("a") as file:
            file.write("\n" + LOCAL_SETTINGS_LINES)
    (directory / "pytest.ini").write_text(pytest_ini(with_app=with_app))
    return directory


def app_tables_in_host_database(directory: Path) -> list[str]:
    """The app's tables in the host's own database (not a test database): a test that wrote there leaked."""
    import subprocess

    probe = (
        "import django, json; django.setup()\n"
        "from django.db import connection\n"
        "from django.db.utils import OperationalError\n"
        "try:\n    names = connection.introspection.table_names()\n"
        "except OperationalError:\n    names = []  # the host's database was never even created\n"
        "print(json.dumps([name for name in names if name.startswith('braintrust_ops')]))\n"
    )
    environment = {"DJANGO_SETTINGS_MODULE": "sefaria.settings", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=directory, env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sefaria_layout")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--database", help="the host's database URL (written into local_settings.py)")
    parser.add_argument("--untouched", action="store_true", help="check the host's database holds no app table")
    args = parser.parse_args(argv)
    if args.untouched:
        leaked = app_tables_in_host_database(args.directory)
        if leaked:
            print(f"Tests wrote into the host's own database: {', '.join(leaked)}", file=sys.stderr)
            return 1
        print("The host's own database holds none of the app's tables.")
        return 0
    print(build(args.directory, database_url=args.database))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
