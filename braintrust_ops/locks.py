"""One run of a command at a time, released by the operating system if the process dies.

PostgreSQL (production, shared by every pod): a session-level advisory lock, which the server
drops when the connection closes, SIGKILL included. SQLite (a laptop): ``flock`` on a file next to
the database, which the kernel drops when the process exits.
"""

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from braintrust_ops.exceptions import CommandLocked


def _advisory_key(name: str) -> int:
    digest = hashlib.sha256(f"braintrust_ops:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_file_path(name: str) -> Path:
    database = str(connection.settings_dict.get("NAME") or "")
    in_memory = database in ("", ":memory:") or database.startswith("file:")
    directory = Path(tempfile.gettempdir()) if in_memory else Path(database).resolve().parent
    # An in-memory database lives in one process, so its lock must not be shared with other processes
    # (parallel test runs all name theirs the same).
    owner = f"{database}:{os.getpid()}" if in_memory else database
    tag = hashlib.sha256(owner.encode()).hexdigest()[:12]
    return directory / f".braintrust_ops-{name}-{tag}.lock"


def _locked_message(name: str) -> str:
    return (
        f"Another {name} run is in progress (it holds the {name} lock), so this one did nothing. "
        "Let it finish; if no run is alive, the lock is already free and you can run again."
    )


@contextmanager
def command_lock(name: str) -> Iterator[None]:
    """Hold the named lock for the block, or raise CommandLocked at once if another run has it."""
    if connection.vendor == "postgresql":
        with _advisory_lock(name):
            yield
    else:
        with _file_lock(name, _lock_file_path(name)):
            yield


@contextmanager
def _advisory_lock(name: str) -> Iterator[None]:
    key = _advisory_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    if not acquired:
        raise CommandLocked(_locked_message(name))
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


@contextmanager
def _file_lock(name: str, path: Path) -> Iterator[None]:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CommandLocked(_locked_message(name)) from None
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
