"""Where an incremental run starts, from the recorded runs of every shard layout (a real database)."""

from datetime import UTC, datetime, timedelta

import pytest

from braintrust_ops.models import CommandRun
from braintrust_ops.services import watermarks
from braintrust_ops.services.watermarks import Start, run_start
from braintrust_ops.shards import Shard

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
RETENTION = NOW - timedelta(days=30)


def recorded(shard: str | None, *watermarks: int, outcome: str = "succeeded", created: datetime | None = None) -> None:
    """One successful run of ``shard`` (None: unsharded) per watermark, in order."""
    for xact in watermarks or [None]:
        CommandRun.objects.create(
            command="tag_logs",
            options={"shard": shard} if shard else {},
            started_at=NOW,
            outcome=outcome,
            xact_watermark=str(xact) if xact else "",
            high_water_mark=created,
        )


def start(shard: str | None = None) -> Start:
    parsed = Shard(*map(int, shard.split("/"))) if shard else None
    return run_start(parsed, now=NOW, default_hours=24, overlap_hours=1, lookback_days=30)


def after(xact: int) -> Start:
    return Start(since=RETENTION, after_xact_id=str(xact))


def test_a_first_run_takes_the_default_hours_back():
    assert start() == Start(since=NOW - timedelta(hours=24))


def test_a_run_starts_after_the_watermark_of_the_run_before_last_compared_as_numbers():
    recorded(None, 98, 100, 99, 1000)
    assert start() == after(100)


def test_only_successful_runs_count():
    recorded(None, 10, 20)
    recorded(None, 30, 40, outcome="failed")
    recorded(None, 50, outcome="interrupted")
    assert start() == after(10)


def test_after_sharded_runs_an_unsharded_run_starts_at_the_lowest_shards_start():
    recorded("0/2", 10, 20, 30)
    recorded("1/2", 5)
    assert start() == after(5)


def test_each_shard_starts_from_its_own_runs_and_the_unsharded_ones_before_them():
    recorded(None, 1, 2)
    recorded("0/2", 10, 20)
    recorded("1/2", 30)
    assert (start("0/2"), start("1/2")) == (after(10), after(2))


@pytest.mark.parametrize(
    "shard, expected",
    [("0/4", 10), ("1/4", 5), ("2/4", 10), ("3/4", 5)],  # shard i/4 holds the logs of shard (i mod 2)/2
)
def test_two_shards_to_four_each_starts_from_the_old_shard_its_logs_were_in(shard, expected):
    recorded("0/2", 10, 20)
    recorded("1/2", 5, 50)
    assert start(shard) == after(expected)


def test_two_shards_to_three_a_shard_holds_logs_of_both_old_shards_and_starts_at_the_lower():
    recorded("0/2", 10, 20)
    recorded("1/2", 5, 50)
    assert {start(f"{index}/3") for index in range(3)} == {after(5)}


def test_a_newer_layouts_runs_take_over_once_they_have_run_twice():
    recorded("0/2", 10, 20)
    recorded("1/2", 5, 50)
    recorded("1/3", 60, 70)
    assert start("1/3") == after(60)
    assert start() == after(5)  # shards 0/3 and 2/3 have not run: their logs still start at 5


def test_a_shard_that_never_succeeded_is_read_from_the_retention_when_others_have_watermarks():
    """One query serves every class of the run: a class with no watermark needs `created` alone, so the
    whole retention is read (widened, never narrowed)."""
    recorded("0/2", 10, 20)
    assert start() == Start(since=RETENTION)
    assert start("1/2") == Start(since=NOW - timedelta(hours=24))  # its own first run, as before


def test_runs_from_before_the_watermark_start_at_their_newest_log_minus_the_overlap():
    recorded(None, created=NOW - timedelta(hours=3))
    recorded(None, created=NOW - timedelta(hours=5))
    assert start() == Start(since=NOW - timedelta(hours=4))


def test_a_run_whose_shard_cannot_be_read_covers_nothing():
    recorded("garbled", 10, 20)
    assert start() == Start(since=NOW - timedelta(hours=24))


def test_too_many_layouts_to_tell_apart_read_the_whole_retention(monkeypatch):
    monkeypatch.setattr(watermarks, "MAX_CLASSES", 5)
    recorded("0/2", 10, 20)
    recorded("0/3", 10, 20)
    assert start() == Start(since=RETENTION)
    assert start("0/6") == after(10)  # lcm 6 over a count of 6: one class
