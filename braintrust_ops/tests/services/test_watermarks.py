"""Where an incremental run starts, from the recorded runs of every shard layout (a real database)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

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


def widened(events: list[dict]) -> list[str]:
    """The reasons of the warnings that a run's window was widened (what an operator sees)."""
    return [
        event["reason"]
        for event in events
        if event["event"] == "tagging_window_widened" and event["log_level"] == "warning"
    ]


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
    whole retention is read (widened, never narrowed), and the log says so."""
    recorded("0/2", 10, 20)
    with capture_logs() as events:
        assert start() == Start(since=RETENTION)
    assert widened(events) == ["some of this run's logs were never covered by a watermark"]
    assert start("1/2") == Start(since=NOW - timedelta(hours=24))  # its own first run, as before


def test_runs_from_before_the_watermark_start_at_their_newest_log_minus_the_overlap():
    recorded(None, created=NOW - timedelta(hours=3))
    recorded(None, created=NOW - timedelta(hours=5))
    assert start() == Start(since=NOW - timedelta(hours=4))


def test_a_newest_log_stamped_in_the_future_starts_the_run_the_overlap_before_now():
    recorded(None, created=NOW + timedelta(hours=5))  # a client's clock ahead of ours
    assert start() == Start(since=NOW - timedelta(hours=1))


def test_a_run_whose_shard_cannot_be_read_covers_nothing():
    recorded("garbled", 10, 20)
    assert start() == Start(since=NOW - timedelta(hours=24))


def test_too_many_layouts_to_tell_apart_read_the_whole_retention(monkeypatch):
    monkeypatch.setattr(watermarks, "MAX_CLASSES", 5)
    recorded("0/2", 10, 20)
    recorded("0/3", 10, 20)
    with capture_logs() as events:
        assert start() == Start(since=RETENTION)
    assert widened(events) == ["too many shard layouts to tell each log's watermark"]
    assert start("0/6") == after(10)  # lcm 6 over a count of 6: one class


def test_the_newer_of_two_watermarks_is_the_greater_number_and_a_missing_one_is_passed_over():
    assert watermarks.newer_xact("99", "100") == "100" and watermarks.newer_xact("100", "99") == "100"
    assert watermarks.newer_xact(None, "7") == "7" and watermarks.newer_xact("", None) is None
    assert watermarks.newer_xact("09", "5") == "09"  # a zero in front changes no number


def test_the_successful_runs_of_other_commands_are_no_watermark_of_tag_logs():
    recorded(None, 10, 20)
    CommandRun.objects.create(
        command="push_to_datasets", options={}, started_at=NOW, outcome="succeeded", xact_watermark="500"
    )
    CommandRun.objects.create(
        command="push_to_datasets", options={}, started_at=NOW, outcome="succeeded", xact_watermark="600"
    )
    assert start() == after(10)


def test_a_run_recorded_with_options_that_are_not_an_object_counts_as_unsharded():
    # An options column holding null or a list (a row written by hand, or by an older version).
    marks = watermarks.marks_of([(None, "10", None), (["--shard", "0/2"], "20", None)])
    assert list(marks) == [watermarks.UNSHARDED] and marks[watermarks.UNSHARDED].xacts == ["20", "10"]


def test_exactly_as_many_classes_as_the_limit_are_still_told_apart(monkeypatch):
    monkeypatch.setattr(watermarks, "MAX_CLASSES", 6)  # layouts of 2 and 3 shards: lcm 6, six classes
    for shard in ("0/2", "1/2", "0/3", "1/3", "2/3"):
        recorded(shard, 10, 20)
    assert start() == after(10)


# --- property: any history of layouts, any run, no log is asked for from later than its own start ------

COUNTS = [1, 2, 3, 4, 6]
runs_history = st.lists(
    st.tuples(st.sampled_from([None, *COUNTS]), st.integers(0, 11), st.integers(1, 40)).map(
        lambda run: (None if run[0] is None else f"{run[1] % run[0]}/{run[0]}", run[2])
    ),
    max_size=12,
)


def _required(runs: list[tuple[str | None, int]], residue: int) -> int | None:
    """The start a log of this residue needs, straight from the runs: after the run before last among
    those that covered it (the only one's, if one), None if none did."""
    covering = {
        xact for shard, xact in runs if shard is None or residue % int(shard.split("/")[1]) == int(shard.split("/")[0])
    }
    ordered = sorted(covering, reverse=True)
    return ordered[1] if len(ordered) > 1 else ordered[0] if ordered else None


@given(runs=runs_history, count=st.sampled_from(COUNTS), index=st.integers(0, 5), sharded=st.booleans())
def test_any_history_of_layouts_gives_a_start_no_log_of_the_run_needs_earlier(runs, count, index, sharded):
    shard = Shard(index % count, count) if sharded else None
    marks = watermarks.marks_of(({"shard": text} if text else {}, str(xact), None) for text, xact in runs)
    got = watermarks.start_from(marks, shard, now=NOW, default_hours=24, overlap_hours=1, lookback_days=30)
    # Every count here divides 12: the residues mod 12 are every way a log can fall across the layouts.
    mine = [r for r in range(12) if shard is None or r % shard.count == shard.index]
    needed = [_required(runs, residue) for residue in mine]
    if all(start is not None for start in needed):
        assert got == after(min(needed))  # the lowest start any of its logs needs: safe, and no lower
    elif any(start is not None for start in needed):
        assert got == Start(since=RETENTION)
    else:
        assert got == Start(since=NOW - timedelta(hours=24))
