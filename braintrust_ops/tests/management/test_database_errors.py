"""A database a command cannot use gives one line saying what failed and what to do, exit 1, no traceback:
a real ``manage.py`` process against a real SQLite file with no tables, read-only or locked by another
connection, and against a PostgreSQL address where nothing listens."""

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys

import pytest
from django.db import DatabaseError, OperationalError, ProgrammingError

from braintrust_ops.db_errors import database_failure
from braintrust_ops.tests.paths import HOST_ROOT
from braintrust_ops_sandbox.constants import ANTHROPIC_KEY, BRAINTRUST_KEY, PROJECT_ID

SQLITE = "django.db.backends.sqlite3"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _manage(database: dict, *args: str) -> subprocess.CompletedProcess:
    """``manage.py args`` in a process of its own, on ``database`` (process_settings.py), its Braintrust and
    Anthropic on a closed port: whatever fails first, nothing leaves the machine."""
    nowhere = f"http://127.0.0.1:{_closed_port()}"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BRAINTRUST", "ANTHROPIC", "SENTRY"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "braintrust_ops.tests.process_settings",
            "TEST_PROCESS_HOST_SETTINGS": os.environ["DJANGO_SETTINGS_MODULE"],
            "TEST_PROCESS_DATABASE": json.dumps(database),
            "BRAINTRUST_API_KEY": BRAINTRUST_KEY,
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "BRAINTRUST_PROJECT_ID": PROJECT_ID,
            "BRAINTRUST_API_URL": nowhere,
            "ANTHROPIC_BASE_URL": nowhere,
            "BRAINTRUST_OPS_HTTP_MAX_RETRIES": "0",
        }
    )
    process = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=HOST_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    process.database = database  # type: ignore[attr-defined]
    return process


def _start_up_lines(database: dict) -> int:
    """How many lines the host itself writes to stderr while Django starts, before any command runs
    (Sefaria's remote_config warns when its own table is missing): they are the host's, not the command's."""
    return len([line for line in _manage(database, "help").stderr.splitlines() if line.strip()])


def _one_line_error(process: subprocess.CompletedProcess) -> str:
    lines = [line for line in process.stderr.splitlines() if line.strip()][_start_up_lines(process.database) :]
    assert process.returncode == 1, process.stderr
    assert "Traceback" not in process.stderr and len(lines) == 1, process.stderr
    assert lines[0].startswith("CommandError: "), lines[0]
    return lines[0].removeprefix("CommandError: ")


@pytest.fixture(scope="module")
def migrated_file(tmp_path_factory):
    """A SQLite file with the app's tables, made once; each test copies it."""
    path = tmp_path_factory.mktemp("migrated") / "template.sqlite3"
    migrate = _manage(
        {"ENGINE": SQLITE, "NAME": str(path)}, "migrate", "braintrust_ops", "--no-input", "-v", "0", "--skip-checks"
    )
    assert migrate.returncode == 0, migrate.stderr
    return path


@pytest.mark.parametrize(
    "command, exists",
    [
        ("tag_logs", True),
        ("tag_logs", False),  # SQLite creates the file: the same as an empty one
        ("push_to_datasets", True),
        ("backup_logs", True),
        ("prune_braintrust_ops", True),
    ],
)
def test_a_database_never_migrated_says_run_migrate(tmp_path, command, exists):
    path = tmp_path / "db.sqlite3"
    if exists:
        sqlite3.connect(path).close()
    args = ["--output", str(tmp_path / "backup.csv")] if command == "backup_logs" else []
    message = _one_line_error(_manage({"ENGINE": SQLITE, "NAME": str(path)}, command, *args))
    assert message.startswith("The database lacks braintrust_ops's tables or columns (no such table: braintrust_ops_")
    assert message.endswith("Run `python manage.py migrate`, then run the command again.")


def test_a_read_only_database_says_so_and_what_to_check(tmp_path, migrated_file):
    path = tmp_path / "db.sqlite3"
    shutil.copy(migrated_file, path)
    read_only = {"ENGINE": SQLITE, "NAME": f"file:{path}?mode=ro"}  # Django opens SQLite names as URIs
    message = _one_line_error(_manage(read_only, "tag_logs"))
    assert message.startswith("The database is read-only (attempt to write a readonly database)")
    assert "must be writable" in message


def test_a_database_locked_by_another_connection_says_so(tmp_path, migrated_file):
    path = tmp_path / "db.sqlite3"
    shutil.copy(migrated_file, path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        message = _one_line_error(
            _manage({"ENGINE": SQLITE, "NAME": str(path), "OPTIONS": {"timeout": 0.2}}, "tag_logs")
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert message.startswith("The database is locked by another process (database is locked)")


def test_a_sqlite_file_in_a_directory_that_does_not_exist_names_the_database_settings(tmp_path):
    message = _one_line_error(_manage({"ENGINE": SQLITE, "NAME": str(tmp_path / "gone" / "db.sqlite3")}, "tag_logs"))
    assert "beside the SQLite database (No such file or directory)" in message
    assert "Check the database settings" in message


def test_postgresql_refusing_connections_says_check_the_settings_and_that_it_runs(tmp_path):
    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "braintrust_ops",
        "USER": "nobody",
        "HOST": "127.0.0.1",
        "PORT": str(_closed_port()),
    }
    message = _one_line_error(_manage(database, "tag_logs"))
    # The driver's own words follow (psycopg 3: "connection failed: ...", psycopg2: "connection to server at ...").
    assert message.startswith("Cannot connect to the database (connection")
    assert message.endswith("and that PostgreSQL is running and reachable from here.")


@pytest.mark.parametrize(
    "error, start",
    [
        (ProgrammingError('relation "braintrust_ops_commandrun" does not exist\nLINE 1: ...'), "The database lacks"),
        (ProgrammingError("column braintrust_ops_taggedlog.custom_id does not exist"), "The database lacks"),
        (OperationalError('connection failed: FATAL:  database "braintrust_ops" does not exist'), "Cannot connect"),
        (OperationalError('FATAL:  password authentication failed for user "ops"'), "Cannot connect"),
        (OperationalError("cannot execute INSERT in a read-only transaction"), "The database is read-only"),
        (OperationalError("database is locked"), "The database is locked by another process"),
        (OperationalError("unable to open database file"), "Cannot open the SQLite database file"),
        (OperationalError("attempt to write a readonly database"), "The database is read-only"),
        (OperationalError("no such table: braintrust_ops_commandrun"), "The database lacks"),
        (OperationalError("disk I/O error"), "The database failed (OperationalError: disk I/O error)"),
    ],
)
def test_postgresql_s_and_sqlite_s_messages_each_get_their_advice(error: DatabaseError, start):
    message = database_failure(error)
    assert message.startswith(start) and "\n" not in message


def test_a_database_message_is_printable_and_free_of_keys(settings):
    settings.BRAINTRUST_OPS = {"ANTHROPIC_API_KEY": ANTHROPIC_KEY}
    message = database_failure(OperationalError(f"weird \x1b[31m {ANTHROPIC_KEY}"))
    assert "\x1b" not in message and ANTHROPIC_KEY not in message
