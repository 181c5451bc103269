"""database_failure on its own: each driver's words to one line that says what to do. The real drivers
meeting real databases are in tests/management/test_database_errors.py (manage.py processes); these are
the wordings those runs produced, plus the edges a process test cannot reach cheaply."""

import pytest
from django.db import DatabaseError, OperationalError
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.db_errors import MAX_DETAIL, database_failure

FAKE_KEY = "sk-driver-key-for-tests-0123456789"


MIGRATE = (
    "The database lacks braintrust_ops's tables or columns (",
    "Run `python manage.py migrate`, then run the command again.",
)
LOCKED = ("The database is locked by another process (", "Let it finish (or stop it), then run the command again.")
READ_ONLY = (
    "The database is read-only (",
    "the file and its directory must be writable (or the database user allowed to write, on a primary, not a replica).",
)
NO_FILE = ("Cannot open the SQLite database file (", "its directory must exist and be writable.")
NO_SERVER = (
    "Cannot connect to the database (",
    "host, port, name, user and password, and that PostgreSQL is running and reachable from here.",
)
OTHER = (
    "The database failed (OperationalError: ",
    "that the database is up, and that it is migrated (`python manage.py migrate`), then run the command again.",
)


@pytest.mark.parametrize(
    ("driver_text", "diagnosis_and_advice"),
    [
        ("no such table: braintrust_ops_commandrun", MIGRATE),
        ("no such column: braintrust_ops_taggedlog.relabel_failures", MIGRATE),
        ('relation "braintrust_ops_commandrun" does not exist\nLINE 1: SELECT ...', MIGRATE),
        ("column braintrust_ops_taggedlog.relabel_failures does not exist", MIGRATE),
        ("database is locked", LOCKED),
        ("database table is locked", LOCKED),
        ("attempt to write a readonly database", READ_ONLY),
        ("cannot execute INSERT in a read-only transaction", READ_ONLY),
        ("the database is read only", READ_ONLY),
        ("unable to open database file", NO_FILE),
        (
            'connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running?',
            NO_SERVER,
        ),
        ("could not connect to server: No such file or directory", NO_SERVER),
        ('FATAL:  password authentication failed for user "ops"', NO_SERVER),
        ("canceling statement due to statement timeout", NO_SERVER),
        ("disk I/O error", OTHER),
    ],
)
def test_each_driver_wording_gets_its_own_diagnosis_and_advice(driver_text, diagnosis_and_advice):
    # The whole advice, not a word of it: the driver's own text is quoted in every line, so a word such
    # as "read-only" is found there whichever branch answered.
    diagnosis, advice = diagnosis_and_advice
    line = database_failure(OperationalError(driver_text))
    assert line.startswith(diagnosis) and line.endswith(advice)


@pytest.mark.parametrize(
    "driver_text",
    [
        'connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "braintrust_ops" does not exist',
        'connection to server at "127.0.0.1", port 5432 failed: FATAL:  role "ops" does not exist',
    ],
)
def test_a_database_or_user_that_does_not_exist_is_a_settings_problem_not_a_missing_migration(driver_text):
    line = database_failure(OperationalError(driver_text))
    assert line.startswith(NO_SERVER[0]) and "migrate" not in line


def test_only_the_drivers_first_line_is_kept_its_hints_are_dropped():
    line = database_failure(OperationalError("connection refused\n\tIs the server running on that host?"))
    assert "connection refused" in line and "Is the server running" not in line


def test_an_error_without_text_is_named_by_its_class():
    assert database_failure(DatabaseError()).startswith("The database failed (DatabaseError: DatabaseError)")


def test_a_key_quoted_by_the_driver_is_redacted(settings):
    settings.BRAINTRUST_OPS = {**getattr(settings, "BRAINTRUST_OPS", {}), "ANTHROPIC_API_KEY": FAKE_KEY}
    line = database_failure(OperationalError(f"could not connect: password={FAKE_KEY}"))
    assert FAKE_KEY not in line and "Cannot connect to the database" in line


def test_a_long_driver_message_is_cut_to_the_limit():
    line = database_failure(OperationalError("x" * (MAX_DETAIL * 3)))
    assert "x" * MAX_DETAIL in line and "x" * (MAX_DETAIL + 1) not in line


@given(st.text())
def test_whatever_the_driver_says_the_result_is_one_printable_line_with_advice(driver_text):
    line = database_failure(OperationalError(driver_text))
    line.encode("utf-8")
    assert len(line.splitlines()) == 1
    assert "\x1b" not in line
    assert "run the command again" in line or "Check the database settings" in line
