"""What a command prints is what happened: counts that add up, a backlog only of earlier runs, no success
line before a failure, a stale count after relabelling, and an option that matches nothing is an error."""

import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from braintrust_ops.models import CommandRun, DatasetInsertion, TaggedLog
from braintrust_ops.tests.factories import tagged_log
from braintrust_ops.tests.management.commands.test_tag_logs_batch import (  # noqa: F401  (a fixture)
    _end_the_batch,
    _submit_held,
    batch_settings,
)

pytestmark = pytest.mark.django_db(transaction=True)


# --- push_to_datasets --dataset -------------------------------------------------------------------------


@pytest.mark.parametrize("also", [[], ["--dataset", "Halacha evals"]], ids=["alone", "beside_a_good_name"])
@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["run", "dry_run"])
def test_a_dataset_option_matching_no_subscribed_dataset_fails_naming_it_and_the_subscribers(
    datasets_project, run_command, also, dry_run
):
    tagged_log("l1", "halacha")
    with pytest.raises(CommandError) as raised:
        run_command("push_to_datasets", "--dataset", "NoSuchName", *also, *dry_run)
    assert str(raised.value) == (
        "--dataset 'NoSuchName' matches no subscribed dataset (by name or id); nothing was pushed. "
        "The datasets that subscribe: Halacha evals, Mixed, Translation evals."
    )
    assert datasets_project.count("dataset_insert") == 0 and not DatasetInsertion.objects.exists()


def test_a_dataset_option_naming_an_unsubscribed_dataset_fails_too(datasets_project, run_command):
    datasets_project.state.add_dataset("Unsubscribed", "no marker here")
    with pytest.raises(CommandError, match="'Unsubscribed' matches no subscribed dataset"):
        run_command("push_to_datasets", "--dataset", "Unsubscribed")
    assert CommandRun.objects.get().outcome == "failed"


def _failing(*args) -> tuple[str, str]:
    """Run tag_logs, which must fail; return (its stdout, its one-line error)."""
    stdout = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("tag_logs", *args, stdout=stdout, stderr=StringIO())
    return stdout.getvalue(), str(raised.value)


# --- tag_logs: counts that add up ----------------------------------------------------------------------------


@pytest.mark.usefixtures("batch_settings")
def test_after_settling_a_batch_an_outage_reports_this_run_s_sends_against_this_run_s_queue(
    small_project, run_command, ops_settings
):
    _submit_held(small_project, run_command)  # the three logs wait in a batch
    _end_the_batch(small_project)
    recent = datetime.now(UTC) - timedelta(hours=1)
    for index in range(4):
        small_project.state.add_log(input=f"Shabbat question {index}", output="a", created=recent)
    ops_settings(CLAUDE_MAX_RETRIES=0, CLAUDE_OUTAGE_THRESHOLD=1, TAGGING_CONCURRENCY=1)
    small_project.claude_outage("overloaded")

    stdout, error = _failing()

    sent, to_send, queued = map(
        int, re.search(r"Stopped sending after (\d+) of (\d+) logs; the (\d+) not tagged stay queued", error).groups()
    )
    assert (sent, to_send) == (small_project.claude_outage_requests, 4)
    assert queued == 4 == TaggedLog.objects.filter(status="pending").count()
    assert "Batches collected: 1 (succeeded 3)" in stdout
    assert f"Not sent, because the run stopped early; they stay queued: {to_send - sent}" in stdout
    counters = CommandRun.objects.latest("started_at").counters
    assert (counters["sent"], counters["collected"], counters["not_sent"]) == (3 + sent, 3, to_send - sent)


def test_a_first_run_has_no_backlog_of_earlier_runs_and_a_later_one_counts_only_theirs(
    small_project, run_command, ops_settings
):
    ops_settings(TAGGING_FAILURE_THRESHOLD=1)
    small_project.faults.add("messages", "status", status=400, times=1)  # one log fails on its own
    first = run_command("tag_logs")
    assert "Backlog of earlier runs" not in first.stdout
    assert CommandRun.objects.get().counters["backlog"] == 0
    small_project.state.add_log(input="Another Shabbat question", created=datetime.now(UTC) - timedelta(hours=1))
    second = run_command("tag_logs")
    assert "Backlog of earlier runs in the queue: 1" in second.stdout  # the failed one, not the new one


def test_a_run_that_fails_prints_no_success_line_before_its_error(small_project, ops_settings):
    ops_settings(TAGGING_FAILURE_THRESHOLD="0.1")
    small_project.faults.add("messages", "status", status=400, times=1)  # 1 of 3 failed: over the threshold
    stdout, error = _failing()
    assert "1 of 3 logs failed to tag" in error
    assert "Tagging finished." not in stdout and "failed: 1 (1 will be retried)" in stdout


def test_a_run_that_succeeds_still_ends_with_its_success_line(small_project, run_command):
    assert run_command("tag_logs").stdout.rstrip().endswith("Tagging finished.")


# --- tag_logs --retag-stale ----------------------------------------------------------------------------------


def test_the_stale_count_printed_after_retag_stale_leaves_out_what_it_relabelled(small_project, run_command):
    run_command("tag_logs")
    small_project.state.add_tag("mishnah", "dataset-tagging: questions about the Mishnah")
    assert "Labelled under another set of taggable tags: 3 " in run_command("tag_logs").stdout
    result = run_command("tag_logs", "--retag-stale")
    assert "Labelled under another set" not in result.stdout and "Sent to Claude: 3;" in result.stdout
    assert CommandRun.objects.latest("started_at").counters["stale_tagged"] == 0


def test_a_stale_label_whose_relabelling_keeps_failing_is_tried_as_often_as_any_log_then_kept(
    small_project, run_command, ops_settings
):
    run_command("tag_logs")
    labels = {log.log_id: log.tag_names for log in TaggedLog.objects.prefetch_related("tags")}
    small_project.state.add_tag("mishnah", "dataset-tagging: questions about the Mishnah")
    ops_settings(TAGGING_MAX_ATTEMPTS=2, TAGGING_FAILURE_THRESHOLD=1)
    calls = small_project.count("messages")
    for _ in range(2):
        for _ in range(3):  # every relabelling answered unusably; the setup check after them is labelled
            small_project.claude_replies.push({"tool_input": {"tags": [1, None, {}]}})
        run_command("tag_logs", "--retag-stale")
    assert small_project.count("messages") == calls + 2 * (3 + 1)
    last = run_command("tag_logs", "--retag-stale")
    assert small_project.count("messages") == calls + 2 * (3 + 1)  # at the cap: not sent again
    assert (
        "Labelled under another set of taggable tags: 3 (tag_logs --retag-stale labels them again); 3 of them "
        "reached the attempt limit relabelling and keep their label" in last.stdout
    )
    assert {log.log_id: log.tag_names for log in TaggedLog.objects.prefetch_related("tags")} == labels
    assert set(TaggedLog.objects.values_list("status", "relabel_failures")) == {("tagged", 2)}
