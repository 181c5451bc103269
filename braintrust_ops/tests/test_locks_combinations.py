"""Which tag_logs runs may overlap, prune against them, and whether a recorded run is still alive.

Every test runs on both engines and asserts what that engine does: on PostgreSQL shards of one count
run side by side; on SQLite (one writer at a time) any second tag_logs run gets a clear refusal.
"""

import threading
import time

import pytest
from django.db import connection

from braintrust_ops import locks
from braintrust_ops.exceptions import CommandLocked
from braintrust_ops.locks import command_lock, is_alive, run_liveness, tag_logs_lock
from braintrust_ops.shards import Shard
from braintrust_ops.tests.concurrency import (
    held_by_another_process,
    held_by_another_run,
    sqlite_file_for_other_processes,
)

pytestmark = pytest.mark.django_db(transaction=True)

ON_POSTGRES = connection.vendor == "postgresql"
ACQUIRED = "acquired"
SQLITE_REFUSAL = "Another tag_logs run is in progress (it holds the tag_logs lock; on SQLite one tag_logs run at a time"


def attempt(lock) -> str:
    """Take ``lock`` on this thread: "acquired", or the refusal's message."""
    try:
        with lock:
            return ACQUIRED
    except CommandLocked as exc:
        return str(exc)


def eventually(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


# --- tag_logs against tag_logs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "held, attempted, on_postgres",
    [
        (None, None, "Another tag_logs run is in progress (it holds the tag_logs lock)"),
        (None, Shard(0, 2), "An unsharded tag_logs run (or prune_braintrust_ops) holds the whole tag_logs lock"),
        (Shard(0, 2), None, "Shard runs of tag_logs (--shard I/2) are in progress"),
        (Shard(0, 2), Shard(0, 2), "Another tag_logs run of shard 0/2 is in progress"),
        (Shard(0, 2), Shard(1, 2), ACQUIRED),
        (Shard(0, 2), Shard(0, 3), "shards of another count (--shard I/2) are in progress, so shard 0/3 did nothing"),
        (Shard(1, 3), Shard(1, 2), "or run this one as --shard 1/3"),
    ],
    ids=[
        "unsharded-unsharded",
        "unsharded-shard",
        "shard-unsharded",
        "same-shard",
        "other-shard-same-count",
        "other-count",
        "other-count-tells-the-count",
    ],
)
def test_a_second_tag_logs_run_is_refused_or_runs_alongside(held, attempted, on_postgres):
    with held_by_another_run(lambda: tag_logs_lock(held)):
        outcome = attempt(tag_logs_lock(attempted))
    if ON_POSTGRES:
        assert on_postgres in outcome
    else:
        assert outcome.startswith(SQLITE_REFUSAL)
    assert "\n" not in outcome


def test_every_shard_of_one_count_runs_side_by_side_on_postgresql_only():
    with held_by_another_run(lambda: tag_logs_lock(Shard(0, 3))):
        second = attempt(held_by_another_run(lambda: tag_logs_lock(Shard(1, 3))))
        if ON_POSTGRES:
            with held_by_another_run(lambda: tag_logs_lock(Shard(1, 3))):
                assert attempt(tag_logs_lock(Shard(2, 3))) == ACQUIRED
    assert second == ACQUIRED if ON_POSTGRES else second.startswith(SQLITE_REFUSAL)


def test_runs_of_two_counts_starting_at_the_same_moment_never_both_go_on():
    for _ in range(10):
        start, both_tried, acquired = threading.Barrier(2), threading.Barrier(2, timeout=30), []

        def run(shard, start=start, both_tried=both_tried, acquired=acquired):
            start.wait()
            try:
                with tag_logs_lock(shard):
                    acquired.append(shard)
                    # Held until the other has tried, however late the scheduler runs it: a fixed sleep let a
                    # loaded machine run the two one after the other, which the lock rightly allows.
                    both_tried.wait()
            except CommandLocked:
                both_tried.wait()
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(shard,)) for shard in (Shard(0, 2), Shard(0, 3))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(acquired) <= 1, acquired


@pytest.mark.parametrize("held", [None, Shard(0, 2)], ids=["unsharded", "shard"])
def test_every_tag_logs_run_can_start_once_the_other_ended_even_by_raising(held):
    with pytest.raises(RuntimeError):
        with tag_logs_lock(held):
            raise RuntimeError("crash inside the run")
    for attempted in (None, Shard(0, 2), Shard(0, 3)):
        assert attempt(held_by_another_run(lambda attempted=attempted: tag_logs_lock(attempted))) == ACQUIRED


# --- prune and the other commands against tag_logs -------------------------------------------------


@pytest.mark.parametrize("shard", [None, Shard(1, 2)], ids=["unsharded", "shard"])
def test_prune_is_refused_while_any_tag_logs_run_holds_its_lock(shard):
    with held_by_another_run(lambda: tag_logs_lock(shard)):
        assert attempt(command_lock("tag_logs")).startswith("Another tag_logs run is in progress")


@pytest.mark.parametrize("shard", [None, Shard(1, 2)], ids=["unsharded", "shard"])
def test_no_tag_logs_run_starts_while_prune_holds_the_tag_logs_lock(shard):
    with held_by_another_run(lambda: command_lock("tag_logs")):
        outcome = attempt(tag_logs_lock(shard))
    if not ON_POSTGRES:
        assert outcome.startswith(SQLITE_REFUSAL)
    elif shard is None:
        assert outcome.startswith("Another tag_logs run is in progress")
    else:
        assert outcome.startswith("An unsharded tag_logs run (or prune_braintrust_ops) holds the whole tag_logs lock")


def test_push_to_datasets_and_backup_logs_run_beside_a_shard():
    with held_by_another_run(lambda: tag_logs_lock(Shard(0, 2))):
        assert attempt(command_lock("push_to_datasets")) == ACQUIRED
        assert attempt(command_lock("backup_logs")) == ACQUIRED


def test_a_killed_shard_run_frees_its_shard(monkeypatch, tmp_path):
    sqlite_file_for_other_processes(monkeypatch, tmp_path)
    with held_by_another_process("locks.tag_logs_lock(Shard(0, 2))") as (process, _):
        assert attempt(tag_logs_lock(Shard(0, 2))) != ACQUIRED
        process.kill()
        assert eventually(lambda: attempt(tag_logs_lock(Shard(0, 2))) == ACQUIRED)


# --- liveness of a run ---------------------------------------------------------------------------


def test_a_run_is_alive_while_it_holds_its_key_and_not_after():
    with held_by_another_run(run_liveness) as key:
        assert is_alive(key)
    assert not is_alive(key)


def test_a_run_holding_its_key_reads_alive_to_itself():
    with run_liveness() as key:
        assert is_alive(key)
    assert not is_alive(key)


def test_a_key_nobody_took_is_not_alive():
    assert not is_alive(12345)


def test_keys_are_fresh_and_fit_a_big_integer_field():
    with run_liveness() as first, run_liveness() as second:
        assert first != second
        assert 0 <= first < 2**63 and 0 <= second < 2**63


@pytest.mark.parametrize(
    "key", [0, 2**31, 2**32 - 1, 2**63 - 1], ids=["zero", "low-half-sign-bit", "low-all-ones", "largest"]
)
def test_keys_at_the_edges_of_the_two_halves_work(monkeypatch, key):
    monkeypatch.setattr(locks.secrets, "randbits", lambda bits: key)
    with held_by_another_run(run_liveness) as held:
        assert held == key and is_alive(key)
        assert not is_alive(key ^ 1)
    assert not is_alive(key)


def test_liveness_is_apart_from_every_lock_of_a_run():
    with held_by_another_run(lambda: tag_logs_lock(Shard(0, 2))):
        with run_liveness() as key:
            assert is_alive(key)
    with held_by_another_run(run_liveness) as key:
        assert attempt(tag_logs_lock(Shard(0, 2))) == ACQUIRED


def test_a_run_is_not_alive_once_its_process_is_killed(monkeypatch, tmp_path):
    """SIGKILL: the run's finally never runs; the server (closed connection) or the kernel releases the key."""
    sqlite_file_for_other_processes(monkeypatch, tmp_path)
    with held_by_another_process("locks.run_liveness()") as (process, key):
        assert is_alive(int(key))
        process.kill()
        assert eventually(lambda: not is_alive(int(key)))
