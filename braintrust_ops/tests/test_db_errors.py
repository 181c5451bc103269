"""database_failure on its own: each driver's words to one line that says what to do. The real drivers
meeting real databases are in tests/management/test_database_errors.py (manage.py processes); these are
the wordings those runs produced, plus the edges a process test cannot reach cheaply."""

import pytest
from django.db import DatabaseError, OperationalError
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.db_errors import MAX_DETAIL, database_failure

FAKE_KEY = "sk-ant-driver-key-for-tests-0123456789"


@pytest.mark.parametrize(
    ("driver_text", "advice"),
    [
        ("no such table: braintrust_ops_commandrun", "never migrated"),
        ("no such column: braintrust_ops_taggedlog.relabel_failures", "never migrated"),
        ('relation "braintrust_ops_commandrun" does not exist\nLINE 1: SELECT ...', "never migrated"),
        ("column braintrust_ops_taggedlog.relabel_failures does not exist", "never migrated"),
        ("database is locked", "locked by another process"),
        ("database table is locked", "locked by another process"),
        ("attempt to write a readonly database", "read-only"),
        ("cannot execute INSERT in a read-only transaction", "read-only"),
        ("unable to open database file", "Cannot open the SQLite database file"),
        (
            'connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running?',
            "Cannot connect to the database",
        ),
        ("could not connect to server: No such file or directory", "Cannot connect to the database"),
        ('FATAL:  password authentication failed for user "ops"', "Cannot connect to the database"),
        ("canceling statement due to statement timeout", "Cannot connect to the database"),
        ("disk I/O error", "The database failed (OperationalError: disk I/O error)"),
    ],
)
def test_each_driver_wording_gets_its_own_advice(driver_text, advice):
    assert advice in database_failure(OperationalError(driver_text))


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
