"""Which runs may overlap, and whether a recorded run is still alive, released by the operating system
if the process dies.

PostgreSQL (production, shared by every pod): session-level advisory locks, which the server drops
when the connection closes, SIGKILL included. SQLite (a laptop): ``flock`` on a file next to the
database, which the kernel drops when the process exits.

Advisory keys live in three spaces that cannot collide: command and shard locks are one bigint
(``_advisory_key``); the shard count is the pair (``_SHARD_COUNT_SPACE``, N), a negative first int;
a run's liveness key is the pair (high 31 bits, low 32 bits) of a random 63-bit key, a first int >= 0.
"""

import fcntl
import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from django.db import connection

from braintrust_ops.exceptions import BraintrustOpsError, CommandLocked
from braintrust_ops.shards import Shard

_SHARD_COUNT_SPACE = -0x62746F70  # any negative int4: liveness keys are pairs whose first int is >= 0

_LET_IT_FINISH = "Let it finish; if no run is alive, the lock is already free and you can run again."


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
    return f"Another {name} run is in progress (it holds the {name} lock), so this one did nothing. {_LET_IT_FINISH}"


@contextmanager
def command_lock(name: str) -> Iterator[None]:
    """Hold the named lock for the block, or raise CommandLocked at once if another run has it.

    ``command_lock("tag_logs")`` also waits for no shard: every tag_logs run holds that lock, shard
    runs in shared mode, so prune_braintrust_ops excludes them all with it."""
    if connection.vendor == "postgresql":
        with _advisory_lock((_advisory_key(name),), _locked_message(name)):
            yield
    else:
        with _file_lock(_lock_file_path(name), _locked_message(name)):
            yield


@contextmanager
def tag_logs_lock(shard: Shard | None) -> Iterator[None]:
    """Hold what a tag_logs run needs for the block, or raise CommandLocked at once.

    An unsharded run excludes every other tag_logs run. Shard runs of one count N work side by side,
    but never two runs of the same shard, and never with shards of another count: those split the
    logs differently, so some logs would be tagged twice."""
    if connection.vendor != "postgresql":
        # SQLite has one writer at a time: shards side by side would only die of "database is locked".
        refusal = (
            "Another tag_logs run is in progress (it holds the tag_logs lock; on SQLite one tag_logs run "
            f"at a time, sharded or not), so this one did nothing. {_LET_IT_FINISH}"
        )
        with _file_lock(_lock_file_path("tag_logs"), refusal):
            yield
    elif shard is None:
        with _advisory_lock((_advisory_key("tag_logs"),), _unsharded_refusal):
            yield
    else:
        with _shard_locks(shard):
            yield


def _unsharded_refusal() -> str:
    count = _held_shard_count(other_than=None)
    if count is None:
        return _locked_message("tag_logs")
    return (
        f"Shard runs of tag_logs (--shard I/{count}) are in progress (they hold the tag_logs lock), so this "
        f"unsharded run did nothing. Let them finish, or run the missing shards with --shard I/{count}."
    )


@contextmanager
def _shard_locks(shard: Shard) -> Iterator[None]:
    with ExitStack() as held:
        held.enter_context(
            _advisory_lock(
                (_advisory_key("tag_logs"),),
                f"An unsharded tag_logs run (or prune_braintrust_ops) holds the whole tag_logs lock, so shard "
                f"{shard} did nothing. Let it finish, then start the shards again.",
                shared=True,
            )
        )
        held.enter_context(
            _advisory_lock(
                (_advisory_key(shard.lock_name),),
                f"Another tag_logs run of shard {shard} is in progress (it holds the shard {shard} lock), so "
                f"this one did nothing. {_LET_IT_FINISH}",
            )
        )
        # Take our count, then look for another: of two runs starting at once with different counts,
        # at least one sees the other (maybe both, and both refuse), so they never both go on.
        held.enter_context(_advisory_lock((_SHARD_COUNT_SPACE, shard.count), "", shared=True))
        other = _held_shard_count(other_than=shard.count)
        if other is not None:
            raise CommandLocked(
                f"tag_logs shards of another count (--shard I/{other}) are in progress, so shard {shard} did "
                f"nothing: counts split the logs differently and would tag some twice. Let them finish, "
                f"or run this one as --shard {shard.index}/{other}."
            )
        yield


def _held_shard_count(*, other_than: int | None) -> int | None:
    """A shard count some tag_logs run holds (other than ``other_than``), or None."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT objid::bigint FROM pg_locks WHERE {_OUR_ADVISORY_PAIRS} AND classid = (%s)::int4::oid "
            "AND objid <> (%s)::int4::oid LIMIT 1",
            [_SHARD_COUNT_SPACE, other_than or 0],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


# Granted two-int advisory locks of this database (advisory locks are per database).
_OUR_ADVISORY_PAIRS = (
    "locktype = 'advisory' AND granted AND objsubid = 2 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


@contextmanager
def run_liveness() -> Iterator[int]:
    """Hold a fresh random key for the whole run and yield it, to store on the run record; ``is_alive``
    tells any process whether the run still holds it. Take it before creating the record, so a new
    run never looks dead."""
    key = secrets.randbits(63)
    if connection.vendor == "postgresql":
        with _advisory_lock(_liveness_pair(key), ""):  # a fresh random key: nobody else holds it
            yield key
    else:
        path = _lock_file_path(f"run-{key}")
        with _file_lock(path, ""):
            try:
                yield key
            finally:
                path.unlink(missing_ok=True)  # before the lock is released: no one can find it free


def is_alive(key: int) -> bool:
    """Whether some process still holds the liveness ``key`` of a run (this one included)."""
    if connection.vendor == "postgresql":
        # Read pg_locks rather than try the lock: no side effect, and a key held by this very
        # session reads as alive (a try would succeed here, as advisory locks are re-entrant).
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT EXISTS (SELECT FROM pg_locks WHERE {_OUR_ADVISORY_PAIRS} "
                "AND classid = (%s)::int4::oid AND objid = (%s)::int4::oid)",
                list(_liveness_pair(key)),
            )
            return cursor.fetchone()[0]
    path = _lock_file_path(f"run-{key}")
    try:
        descriptor = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False  # the run ended and removed its file
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        path.unlink(missing_ok=True)  # left by a killed run; its key is never used again
        return False
    finally:
        os.close(descriptor)


def _liveness_pair(key: int) -> tuple[int, int]:
    high, low = key >> 32, key & 0xFFFFFFFF
    return high, low - (1 << 32) if low >= 1 << 31 else low  # both as int4; high < 2**31 as key < 2**63


@contextmanager
def _advisory_lock(key: tuple[int, ...], refusal: str | Callable[[], str], *, shared: bool = False) -> Iterator[None]:
    """``key`` is one bigint or two int4s: PostgreSQL keeps the two forms apart. ``refusal`` may be a
    function, to look at who holds the lock only when it is refused."""
    mode = "_shared" if shared else ""
    arguments = "(%s)::bigint" if len(key) == 1 else "(%s)::int4, (%s)::int4"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock{mode}({arguments})", list(key))
        acquired = cursor.fetchone()[0]
    if not acquired:
        raise CommandLocked(refusal() if callable(refusal) else refusal)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_unlock{mode}({arguments})", list(key))


@contextmanager
def _file_lock(path: Path, refusal: str) -> Iterator[None]:
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise BraintrustOpsError(
            f"Cannot create the lock file {path} beside the SQLite database ({exc.strerror}). Check the database "
            "settings (DATABASE_URL, or the host's DATABASES): the database's directory must exist and be writable."
        ) from exc
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CommandLocked(refusal) from None
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
