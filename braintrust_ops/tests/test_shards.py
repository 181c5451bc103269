"""tag_logs --shard I/N: N runs side by side, each with its own share of the logs, none sent twice."""

import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management.base import CommandError
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.locks import tag_logs_lock
from braintrust_ops.models import CommandRun, TagBatch, TaggedLog
from braintrust_ops.shards import Shard, parse_shard, shard_of
from braintrust_ops.tests.concurrency import held_by_another_run
from braintrust_ops.tests.strategies import text

pytestmark = pytest.mark.django_db(transaction=True)

LOG_IDS = [f"log-{number}" for number in range(12)]


def ids_of_shard(index: int, count: int) -> set[str]:
    return {log_id for log_id in LOG_IDS if shard_of(log_id, count) == index}


# --- the split -----------------------------------------------------------------------------------


def test_shards_partition_the_logs_disjoint_and_complete():
    ids = [f"00000000-0000-4000-8000-{number:012d}" for number in range(4000)]
    owners = [[shard for shard in range(4) if Shard(shard, 4).owns(log_id)] for log_id in ids]
    assert all(len(owner) == 1 for owner in owners)
    sizes = Counter(owner[0] for owner in owners)
    assert all(850 <= size <= 1150 for size in sizes.values()), sizes  # an even split, give or take


def test_the_split_is_the_same_in_every_process_whatever_pythons_hash_seed():
    code = "from braintrust_ops.shards import shard_of; print([shard_of(f'log-{i}', 7) for i in range(50)])"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], env={"PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True
        ).stdout
        for seed in ("1", "2")
    }
    assert runs == {f"{[shard_of(f'log-{i}', 7) for i in range(50)]}\n"}


def test_the_split_is_pinned_so_a_release_cannot_move_logs_between_shards():
    assert [shard_of(f"log-{number}", 2) for number in range(12)] == [0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    assert shard_of("e3e70682-c209-4cac-a29f-6fbed82c07cd", 4) == 1


@given(log_id=text, count=st.integers(1, 64))
def test_any_id_has_exactly_one_shard_of_n_the_same_every_time(log_id, count):
    owners = [index for index in range(count) if Shard(index, count).owns(log_id)]
    assert owners == [shard_of(log_id, count)] and shard_of(log_id, count) == shard_of(log_id, count)


@given(index=st.integers(0, 99), extra=st.integers(1, 100))
def test_a_shards_text_reads_back_as_the_same_shard(index, extra):
    shard = Shard(index, index + extra)
    assert parse_shard(str(shard)) == shard and parse_shard(f" {shard.index} / {shard.count} ") == shard


@given(text)
def test_any_shard_option_is_a_valid_shard_or_refused_saying_what_is_wanted(option):
    try:
        shard = parse_shard(option)
    except ValueError as exc:
        assert "I/N" in str(exc) or "0 to N-1" in str(exc)
    else:
        assert 0 <= shard.index < shard.count


@pytest.mark.parametrize("text, shard", [("0/1", Shard(0, 1)), ("3/4", Shard(3, 4)), (" 1 / 2 ", Shard(1, 2))])
def test_shard_option_reads_index_over_count(text, shard):
    assert parse_shard(text) == shard


@pytest.mark.parametrize("text", ["4/4", "5/4", "1/0", "-1/4", "a/b", "1", "1/2/3", ""])
def test_shard_option_refuses_anything_but_an_index_below_the_count(text):
    with pytest.raises(ValueError, match="I/N|0 to N-1"):
        parse_shard(text)


def test_a_one_based_index_of_a_single_shard_is_told_the_only_index_is_zero():
    with pytest.raises(ValueError, match=r"'1/1': the shard index must be from 0 to N-1 \(here 0\)"):
        parse_shard("1/1")


# --- the command ---------------------------------------------------------------------------------


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


@pytest.fixture
def sharded_project(sandbox_env):
    """One taggable tag and twelve logs with known ids, two hours old."""
    sandbox = sandbox_env
    sandbox.state.clear_logs()
    sandbox.state.clear_tags()
    sandbox.state.add_tag("halacha", "Questions of Jewish law. dataset-tagging")
    for log_id in LOG_IDS:
        sandbox.state.add_log(id=log_id, input=question(log_id), created=hours_ago(2))
    return sandbox


def question(log_id: str) -> str:
    return f"Is it permitted to cook on Shabbat? ({log_id})"


def sent_log_ids(sandbox) -> list[str]:
    """The logs sent to Claude, one entry per request."""
    return [log_id for request in sandbox.claude_requests for log_id in LOG_IDS if f"({log_id})" in str(request)]


def test_each_shard_stores_and_tags_only_its_own_logs_and_together_they_tag_every_log_once(
    sharded_project, run_command
):
    first = run_command("tag_logs", "--shard", "0/2")
    assert set(TaggedLog.objects.values_list("log_id", flat=True)) == ids_of_shard(0, 2)
    assert f"Shard 0/2: {len(ids_of_shard(1, 2))} logs of the window left to the other shards" in first.stdout

    run_command("tag_logs", "--shard", "1/2")
    assert sorted(sent_log_ids(sharded_project)) == sorted(LOG_IDS)  # each exactly once
    assert set(TaggedLog.objects.filter(status="tagged").values_list("log_id", flat=True)) == set(LOG_IDS)
    assert sorted(CommandRun.objects.values_list("options__shard", flat=True)) == ["0/2", "1/2"]


def test_a_shard_sends_only_its_own_pending_logs(sharded_project, run_command):
    for log_id in LOG_IDS:  # stored by an earlier run that stopped before tagging them
        TaggedLog.objects.create(log_id=log_id, logged_at=hours_ago(30), input=question(log_id), output="")
    run_command("tag_logs", "--shard", "1/2", "--since", hours_ago(1).isoformat())  # a window with no logs
    assert set(sent_log_ids(sharded_project)) == ids_of_shard(1, 2)
    assert set(TaggedLog.objects.filter(status="pending").values_list("log_id", flat=True)) == ids_of_shard(0, 2)


def test_dry_run_of_a_shard_counts_only_its_own_logs(sharded_project, run_command):
    result = run_command("tag_logs", "--shard", "0/2", "--dry-run")
    assert f"[dry run] Would send {len(ids_of_shard(0, 2))} logs to Claude" in result.stdout
    assert not TaggedLog.objects.exists() and sharded_project.count("messages") == 0


def test_one_shards_success_does_not_move_another_shards_window(sharded_project, run_command):
    """Shard 0 saw logs up to a minute ago; shard 1 has never succeeded, so its default window still reaches
    back a day, to the ten-hour-old logs that are its own."""
    sharded_project.state.clear_logs()
    for log_id in LOG_IDS:
        sharded_project.state.add_log(id=log_id, input=question(log_id), created=hours_ago(10))
    sharded_project.state.add_log(id="newest", input="Latest question", created=hours_ago(1 / 60))
    run_command("tag_logs", "--shard", "0/2")
    run_command("tag_logs", "--shard", "1/2")
    tagged = set(TaggedLog.objects.filter(status="tagged").values_list("log_id", flat=True))
    assert ids_of_shard(1, 2) <= tagged


def test_push_cannot_be_combined_with_shard_and_nothing_is_requested(sharded_project, run_command):
    with pytest.raises(CommandError, match="--push cannot be combined with --shard.*push_to_datasets once"):
        run_command("tag_logs", "--shard", "0/2", "--push")
    assert sharded_project.requests == {}


def test_a_shard_index_outside_the_count_is_refused_with_the_valid_range(sharded_project, run_command):
    with pytest.raises(CommandError, match=r"--shard: '2/2': the shard index must be from 0 to N-1 \(here 1\)"):
        run_command("tag_logs", "--shard", "2/2")
    assert sharded_project.requests == {}


def test_shards_lock_only_against_runs_of_the_same_shard_on_postgresql_and_one_at_a_time_on_sqlite(
    sharded_project, run_command
):
    with held_by_another_run(lambda: tag_logs_lock(Shard(0, 2))):
        with pytest.raises(CommandError, match="Another tag_logs run"):
            run_command("tag_logs", "--shard", "0/2")
        if connection.vendor == "postgresql":
            run_command("tag_logs", "--shard", "1/2")
            assert set(sent_log_ids(sharded_project)) == ids_of_shard(1, 2)
        else:
            with pytest.raises(CommandError, match="on SQLite one tag_logs run at a time"):
                run_command("tag_logs", "--shard", "1/2")


def test_a_shard_run_starting_never_marks_a_live_shard_run_abandoned(sharded_project, run_command):
    from braintrust_ops.locks import run_liveness

    with held_by_another_run(run_liveness) as key:
        alive = CommandRun.objects.create(
            command="tag_logs", options={"shard": "0/2"}, started_at=datetime.now(UTC), lock_key=key
        )
        dead = CommandRun.objects.create(
            command="tag_logs", options={"shard": "0/2"}, started_at=datetime.now(UTC), lock_key=12345
        )
        run_command("tag_logs", "--shard", "1/2")
        alive.refresh_from_db()
        dead.refresh_from_db()
        assert alive.outcome == "running" and dead.outcome == "failed" and "Abandoned" in dead.error


# --- changing the shard layout: watermarks and open batches belong to the project ----------------

LAYOUTS = {"unsharded": [None], "2 shards": ["0/2", "1/2"], "3 shards": ["0/3", "1/3", "2/3"]}
CHANGES = [("2 shards", "unsharded"), ("unsharded", "3 shards"), ("2 shards", "3 shards"), ("3 shards", "2 shards")]
LATE_IDS = [f"late-{number}" for number in range(12)]


def run_layout(run_command, layout: str, *args: str) -> list[str]:
    """One run of each shard of the layout, in order; their outputs."""
    shards = LAYOUTS[layout]
    return [run_command("tag_logs", *(["--shard", shard] if shard else []), *args).stdout for shard in shards]


def add_late_logs(sandbox, log_ids=LATE_IDS) -> None:
    """Logs flushed late: ingested now, created 30 hours ago, before a first run's 24-hour window."""
    for log_id in log_ids:
        sandbox.state.add_log(id=log_id, input=question(log_id), created=hours_ago(30))


def tagged_ids() -> set[str]:
    return set(TaggedLog.objects.filter(status="tagged").values_list("log_id", flat=True))


@pytest.mark.parametrize("before, after", CHANGES)
def test_a_layout_change_starts_from_the_old_layouts_watermarks_so_a_log_flushed_late_is_tagged(
    sharded_project, run_command, before, after
):
    run_layout(run_command, before)
    add_late_logs(sharded_project)
    run_layout(run_command, after)
    assert tagged_ids() == {*LOG_IDS, *LATE_IDS}


def test_shards_that_last_succeeded_at_different_times_hand_over_the_oldest_watermark(sharded_project, run_command):
    """Shard 0/2 kept running after shard 1/2's last success: an unsharded run must start from shard 1/2's
    watermark for shard 1/2's logs, the lowest of the two, not from shard 0/2's."""
    run_layout(run_command, "2 shards")
    late_of_shard_1 = [log_id for log_id in LATE_IDS if shard_of(log_id, 2) == 1]
    add_late_logs(sharded_project, late_of_shard_1)
    for _ in range(3):  # shard 0/2's watermark, and the one before it, move past the late logs
        run_command("tag_logs", "--shard", "0/2")
        sharded_project.state.add_log(input="Is it kosher?", created=hours_ago(1))
    assert not set(late_of_shard_1) & tagged_ids()
    run_command("tag_logs")
    assert set(late_of_shard_1) <= tagged_ids()


@pytest.mark.parametrize("before, after", CHANGES)
def test_a_layout_change_hands_open_batches_over_and_each_is_collected_once(
    sharded_project, run_command, ops_settings, before, after
):
    """Batches opened under the old layout are counted as still processing by the new one, then collected,
    each by exactly one run, and their logs labelled: none is stranded, none sent again."""
    ops_settings(CLAUDE_BATCH_POLL_SECONDS="0.05")
    sharded_project.batches.processing_seconds = 3600
    run_layout(run_command, before, "--batch")
    opened = sharded_project.batches.all()
    assert TagBatch.objects.filter(state="open").count() == len(opened) >= 1

    waiting = run_layout(run_command, after, "--batch")
    assert sum(int(re.search(r"batches still processing: (\d+)", out).group(1)) for out in waiting) == len(opened)
    for batch in opened:
        sharded_project.batches.end_processing(batch["id"])
    run_layout(run_command, after, "--batch")
    assert set(TagBatch.objects.values_list("state", flat=True)) == {"collected"}
    assert sharded_project.count("batches_results") == len(opened)
    assert sharded_project.count("batches_create") == len(opened) and sharded_project.count("messages") == 0
    assert tagged_ids() == set(LOG_IDS)


def test_ids_holding_half_an_emoji_are_split_like_any_other_and_the_split_is_pinned():
    """Each lone surrogate is hashed as itself (UTF-8 with surrogatepass): replaced by one placeholder ("?",
    U+FFFD), every such id would land in one shard; written as its escape, it would share the shard of the
    id a user typed as six characters."""
    assert [shard_of(f"log-{chr(0xD800 + number)}", 4) for number in range(12)] == [2, 2, 3, 2, 1, 2, 3, 3, 3, 2, 3, 3]
