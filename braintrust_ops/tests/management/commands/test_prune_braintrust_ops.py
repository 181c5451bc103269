"""prune_braintrust_ops: chat text older than the retention goes; the ledger, and exactly-once, stay."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management.base import CommandError
from freezegun import freeze_time

from braintrust_ops.models import CommandRun, DatasetInsertion, LogTag, TagBatch, TaggedLog
from braintrust_ops.tests.concurrency import lock_held_by_another_run

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)


def tagged(log_id: str, age: timedelta, *tags: str) -> TaggedLog:
    log = TaggedLog.objects.create(
        log_id=log_id,
        root_span_id=log_id,
        logged_at=NOW - age,
        input=f"question {log_id}",
        output="answer",
        status="tagged",
        model="claude-haiku-4-5",
        prompt_version="2026-11-24.1",
        tagged_at=NOW - age,
    )
    LogTag.objects.bulk_create([LogTag(tagged_log=log, name=name) for name in tags])
    return log


def test_logs_older_than_the_retention_are_deleted_and_newer_ones_kept(run_command):
    old = tagged("old", timedelta(days=30, seconds=1), "halacha")
    tagged("recent", timedelta(days=29, hours=23), "halacha")
    DatasetInsertion.objects.create(
        log_id="old", tagged_log=old, dataset_id="ds-1", dataset_name="Halacha evals", row_id="row-old"
    )
    with freeze_time(NOW):
        result = run_command("prune_braintrust_ops")
    assert list(TaggedLog.objects.values_list("log_id", flat=True)) == ["recent"]
    assert list(LogTag.objects.values_list("tagged_log__log_id", flat=True)) == ["recent"]
    assert "Deleted 1 tagged logs older than 2026-10-25 02:30 UTC" in result.stdout
    assert CommandRun.objects.get(command="prune_braintrust_ops").counters["deleted"] == 1


def test_the_ledger_keeps_pruned_log_ids_so_a_returning_log_is_not_inserted_again(sandbox_env, run_command):
    sandbox_env.state.clear_datasets()
    sandbox_env.state.clear_tags()
    sandbox_env.state.add_tag("halacha", "dataset-tagging")
    dataset = sandbox_env.state.add_dataset("Halacha evals", '[[relevant_tags: ["halacha"]]]')
    tagged("l1", timedelta(days=40), "halacha")
    run_command("push_to_datasets")
    with freeze_time(NOW):
        run_command("prune_braintrust_ops")
    (entry,) = DatasetInsertion.objects.all()
    assert entry.log_id == "l1" and entry.tagged_log is None

    tagged("l1", timedelta(days=40), "halacha")  # a backfill brings the log back
    inserts = sandbox_env.count("dataset_insert")
    result = run_command("push_to_datasets")
    assert sandbox_env.count("dataset_insert") == inserts
    assert "already present 1, inserted 0" in result.stdout
    assert len(sandbox_env.state.dataset_rows(dataset["id"])) == 1


def test_retention_comes_from_settings_and_days_overrides_it(run_command, settings):
    settings.BRAINTRUST_OPS = {"RETENTION_DAYS": "7"}
    tagged("eight-days", timedelta(days=8))
    tagged("three-days", timedelta(days=3))
    with freeze_time(NOW):
        run_command("prune_braintrust_ops")
        assert list(TaggedLog.objects.values_list("log_id", flat=True)) == ["three-days"]
        run_command("prune_braintrust_ops", "--days", "2")
    assert not TaggedLog.objects.exists()


def test_dry_run_counts_and_deletes_nothing(run_command):
    tagged("old", timedelta(days=31))
    with freeze_time(NOW):
        result = run_command("prune_braintrust_ops", "--dry-run")
    assert "[dry run] Would delete 1 tagged logs" in result.stdout
    assert TaggedLog.objects.count() == 1 and not CommandRun.objects.exists()


def test_invalid_retention_setting_is_refused_naming_the_variable(run_command, settings):
    settings.BRAINTRUST_OPS = {"RETENTION_DAYS": "0"}
    with pytest.raises(CommandError, match="BRAINTRUST_OPS_RETENTION_DAYS"):
        run_command("prune_braintrust_ops")


def test_prune_refuses_while_tag_logs_is_running(run_command):
    tagged("old", timedelta(days=31))
    with lock_held_by_another_run("tag_logs"):
        with pytest.raises(CommandError, match="Another tag_logs run is in progress"):
            run_command("prune_braintrust_ops")
    assert TaggedLog.objects.count() == 1


def stored(log_id: str, age: timedelta, **fields) -> TaggedLog:
    return TaggedLog.objects.create(
        log_id=log_id, root_span_id=log_id, logged_at=NOW - age, input=f"Shabbat question {log_id}", **fields
    )


def test_logs_never_labelled_are_kept_however_old_and_the_report_says_how_many(run_command):
    """After a long outage the queue is older than the retention: deleting it would lose those logs for good
    (the next run's window starts after them). Given-up and labelled logs go as before."""
    old = timedelta(days=45)
    batch = TagBatch.objects.create(
        batch_id="msgbatch_open", state="open", request_count=2, model="m", prompt_version="v", tagset_fingerprint="f"
    )
    stored("pending", old)
    stored("failed-retryable", old, status="failed", attempts=2, last_error="a 400 on its content")
    stored("in-open-batch", old, batch=batch, custom_id="log-1")
    tagged("relabel-in-open-batch", old, "halacha")  # --retag-stale sent it again
    TaggedLog.objects.filter(log_id="relabel-in-open-batch").update(batch=batch, custom_id="log-2")
    stored("given-up", old, status="failed", attempts=3, last_error="a 400 on its content")
    tagged("labelled", old, "halacha")
    with freeze_time(NOW):
        dry = run_command("prune_braintrust_ops", "--dry-run")
        result = run_command("prune_braintrust_ops")
    kept = {"pending", "failed-retryable", "in-open-batch", "relabel-in-open-batch"}
    assert set(TaggedLog.objects.values_list("log_id", flat=True)) == kept
    assert "Would delete 2 tagged logs older than 2026-10-25 02:30 UTC; would keep 4 never labelled" in dry.stdout
    assert "Deleted 2 tagged logs" in result.stdout and "kept 4 never labelled" in result.stdout
    run = CommandRun.objects.get(command="prune_braintrust_ops")
    assert (run.counters["deleted"], run.counters["kept_never_labelled"]) == (2, 4)


def test_a_pending_log_kept_past_the_retention_is_tagged_by_the_next_run(small_project, run_command):
    stored("from-before-the-outage", timedelta(days=45))
    with freeze_time(NOW):
        run_command("prune_braintrust_ops")
    run_command("tag_logs")
    log = TaggedLog.objects.get(log_id="from-before-the-outage")
    assert log.status == "tagged" and log.tag_names == ["halacha"]
