"""A database failure as one line for a person: what failed and what to do.

A command that meets a database it cannot use (no tables yet, a locked or read-only file, a server that
refuses connections) used to end in a 60-100 line traceback whose last line named a driver's exception.
``OpsCommand.execute`` turns every ``django.db.DatabaseError`` into ``CommandError(database_failure(exc))``.
Django's errors keep the driver's message (sqlite3's or psycopg's) as their text; that text is matched
here, since the drivers share no error codes for these cases.
"""

from django.db import DatabaseError

from braintrust_ops.conf import without_secrets
from braintrust_ops.printable import printable

MAX_DETAIL = 200

_MIGRATE = "Run `python manage.py migrate`, then run the command again."
_SETTINGS = "Check the database settings (DATABASE_URL, or the host's DATABASES)"


def database_failure(error: DatabaseError) -> str:
    """What failed and what to do, in one line, for a DatabaseError met by a command."""
    lines = str(error).strip().splitlines()
    # The driver's first line says what happened; the rest is hints (psycopg's "Is the server running...").
    detail = printable(without_secrets(lines[0] if lines else type(error).__name__), limit=MAX_DETAIL)
    text = detail.lower()
    missing = "no such table" in text or "no such column" in text
    if missing or ("does not exist" in text and ("relation" in text or "column" in text)):
        return (
            f"The database lacks braintrust_ops's tables or columns ({detail}): it was never migrated, or not since "
            f"an upgrade. {_MIGRATE}"
        )
    if "database is locked" in text or "database table is locked" in text:
        return (
            f"The database is locked by another process ({detail}): another command, or a shell, holds a write "
            "transaction on the SQLite file. Let it finish (or stop it), then run the command again."
        )
    if "readonly" in text or "read-only" in text or "read only" in text:
        return (
            f"The database is read-only ({detail}): the command records its runs and results there. {_SETTINGS}: "
            "the file and its directory must be writable (or the database user allowed to write, on a primary, "
            "not a replica)."
        )
    if "unable to open database file" in text:
        return (
            f"Cannot open the SQLite database file ({detail}). {_SETTINGS}: its directory must exist and be writable."
        )
    if "connection" in text or "could not connect" in text or "authentication failed" in text or "timeout" in text:
        return (
            f"Cannot connect to the database ({detail}). {_SETTINGS}: host, port, name, user and password, and "
            "that PostgreSQL is running and reachable from here."
        )
    return (
        f"The database failed ({type(error).__name__}: {detail}). {_SETTINGS}, that the database is up, and that "
        "it is migrated (`python manage.py migrate`), then run the command again."
    )
