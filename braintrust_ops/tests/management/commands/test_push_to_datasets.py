"""push_to_datasets against the sandbox: subscriptions, exactly-once, row shape, batches, failures."""

import os
import signal
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management.base import CommandError

from braintrust_ops.models import CommandRun, DatasetInsertion
from braintrust_ops.services.datasets import dataset_row_id
from braintrust_ops.tests.factories import tagged_log

pytestmark = pytest.mark.django_db(transaction=True)


def _row_ids(sandbox, dataset_id):
    return sorted(row["id"] for row in sandbox.state.dataset_rows(dataset_id))


def test_each_log_goes_to_every_subscribing_dataset(datasets_project, run_command):
    tagged_log("l1", "halacha")
    tagged_log("l2", "translation")
    tagged_log("l3", "halacha", "translation")
    tagged_log("l4", "sources")
    result = run_command("push_to_datasets")
    assert _row_ids(datasets_project, datasets_project.halacha) == sorted(dataset_row_id(i) for i in ("l1", "l3"))
    assert _row_ids(datasets_project, datasets_project.translation) == sorted(dataset_row_id(i) for i in ("l2", "l3"))
    assert _row_ids(datasets_project, datasets_project.both) == sorted(dataset_row_id(i) for i in ("l1", "l2", "l3"))
    assert DatasetInsertion.objects.count() == 7
    assert "Inserted 7 rows into 3 datasets" in result.stdout


def test_row_maps_input_to_input_output_to_expected_and_keeps_provenance(datasets_project, run_command):
    tagged_log("l1", "halacha", input={"messages": [{"role": "user", "content": "שבת?"}]}, output="Yes.")
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    (row,) = datasets_project.state.dataset_rows(datasets_project.halacha)
    assert row["id"] == dataset_row_id("l1")
    assert row["input"] == {"messages": [{"role": "user", "content": "שבת?"}]}
    assert row["expected"] == "Yes."
    assert row["tags"] == ["halacha"]
    assert row["metadata"] == {
        "source_log_id": "l1",
        "source_root_span_id": "root-l1",
        "source_logged_at": "2026-11-23T12:00:00+00:00",
        "assigned_tags": ["halacha"],
        "label_source": "claude",
        "tagging_model": "claude-haiku-4-5",
        "tagging_prompt_version": "2026-11-24.1",
        "source_metadata": {"session": "s1"},
    }
    assert "_xact_id" not in row["input"] and "scores" not in row


def test_second_run_inserts_nothing(datasets_project, run_command):
    tagged_log("l1", "halacha")
    run_command("push_to_datasets")
    inserts = datasets_project.count("dataset_insert")
    result = run_command("push_to_datasets")
    assert datasets_project.count("dataset_insert") == inserts
    assert "Halacha evals: matched 1, already present 1, inserted 0, failed 0" in result.stdout


def test_push_never_reads_the_target_datasets(datasets_project, run_command):
    tagged_log("l1", "halacha")
    run_command("push_to_datasets")
    run_command("push_to_datasets")
    assert datasets_project.count("dataset_fetch") == 0


def test_lost_ledger_creates_no_duplicate_rows(datasets_project, run_command):
    tagged_log("l1", "halacha")
    tagged_log("l2", "halacha")
    run_command("push_to_datasets")
    DatasetInsertion.objects.all().delete()
    run_command("push_to_datasets")
    assert _row_ids(datasets_project, datasets_project.halacha) == sorted(dataset_row_id(i) for i in ("l1", "l2"))


def test_reconcile_repairs_a_lost_ledger_by_reading_each_dataset_once(datasets_project, run_command):
    tagged_log("l1", "halacha")
    run_command("push_to_datasets")
    DatasetInsertion.objects.all().delete()
    inserts = datasets_project.count("dataset_insert")
    result = run_command("push_to_datasets", "--reconcile")
    assert datasets_project.count("dataset_insert") == inserts
    assert DatasetInsertion.objects.filter(log_id="l1").count() == 2
    assert "Ledger repaired from the datasets: 2 rows" in result.stdout


def test_only_tagged_logs_with_tags_are_pushed(datasets_project, run_command):
    tagged_log("no-tags")
    tagged_log("failed", "halacha", status="failed")
    tagged_log("pending", "halacha", status="pending")
    result = run_command("push_to_datasets")
    assert DatasetInsertion.objects.count() == 0
    assert "Inserted 0 rows" in result.stdout


def test_tags_that_match_no_dataset_push_nothing(datasets_project, run_command):
    tagged_log("l1", "sources")
    run_command("push_to_datasets")
    assert datasets_project.count("dataset_insert") == 0


def test_malformed_and_missing_markers_skip_those_datasets_with_a_warning(datasets_project, run_command):
    datasets_project.state.add_dataset("Trailing comma", '[[relevant_tags: ["halacha", ]]]')
    datasets_project.state.add_dataset("Numbers", "[[relevant_tags: [1, 2]]]")
    datasets_project.state.add_dataset("Nested", '[[relevant_tags: [["halacha"]]]]')
    datasets_project.state.add_dataset("No marker", "just a dataset")
    datasets_project.state.add_dataset("Null description", None)
    tagged_log("l1", "halacha")
    result = run_command("push_to_datasets")
    for name in ("Trailing comma", "Numbers", "Nested"):
        assert f"Skipped dataset with a malformed marker: {name}:" in result.stderr
    assert set(DatasetInsertion.objects.values_list("dataset_name", flat=True)) == {"Halacha evals", "Mixed"}


def test_marker_naming_an_unknown_tag_is_reported_not_fatal(datasets_project, run_command):
    datasets_project.state.add_dataset("Typo", '[[relevant_tags: ["halacah", "halacha"]]]')
    tagged_log("l1", "halacha")
    result = run_command("push_to_datasets")
    assert "not taggable (never matches): Typo: halacah" in result.stderr
    assert DatasetInsertion.objects.filter(dataset_name="Typo").count() == 1


def test_duplicate_tags_in_a_marker_insert_each_log_once(datasets_project, run_command):
    dataset = datasets_project.state.add_dataset("Dups", '[[relevant_tags: ["halacha", "halacha", " halacha "]]]')["id"]
    tagged_log("l1", "halacha")
    run_command("push_to_datasets", "--dataset", "Dups")
    assert _row_ids(datasets_project, dataset) == [dataset_row_id("l1")]


def test_no_subscribed_datasets_says_so_and_exits_zero(sandbox_env, run_command):
    sandbox_env.state.clear_datasets()
    sandbox_env.state.add_dataset("Plain", "no marker here")
    sandbox_env.state.add_dataset("Empty list", "[[relevant_tags: []]]")
    result = run_command("push_to_datasets")
    assert "No subscribed datasets among 2 listed" in result.stdout


def test_no_tagged_logs_inserts_nothing_and_succeeds(datasets_project, run_command):
    result = run_command("push_to_datasets")
    assert datasets_project.count("dataset_insert") == 0
    assert CommandRun.objects.get(command="push_to_datasets").outcome == "succeeded"
    assert "Inserted 0 rows" in result.stdout


def test_dataset_filter_by_name_or_id_limits_the_push(datasets_project, run_command):
    tagged_log("l1", "halacha", "translation")
    run_command("push_to_datasets", "--dataset", "Halacha evals", "--dataset", datasets_project.translation)
    assert set(DatasetInsertion.objects.values_list("dataset_id", flat=True)) == {
        datasets_project.halacha,
        datasets_project.translation,
    }


def test_dry_run_reports_per_dataset_and_writes_nothing(datasets_project, run_command):
    tagged_log("l1", "halacha")
    tagged_log("l2", "halacha")
    result = run_command("push_to_datasets", "--dry-run")
    assert "[dry run] Halacha evals: matched 2, already present 0, would insert 2" in result.stdout
    assert datasets_project.count("dataset_insert") == 0
    assert not DatasetInsertion.objects.exists() and not CommandRun.objects.exists()


def test_inserts_go_in_batches_of_the_configured_size(datasets_project, run_command, ops_settings):
    ops_settings(PUSH_BATCH_SIZE=2)
    for index in range(5):
        tagged_log(f"l{index}", "halacha")
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert datasets_project.count("dataset_insert") == 3
    assert len(datasets_project.state.dataset_rows(datasets_project.halacha)) == 5


def test_batches_run_across_the_chunks_read_from_the_database(datasets_project, run_command, ops_settings):
    from braintrust_ops.services.datasets import EVENT_CHUNK

    ops_settings(PUSH_BATCH_SIZE=EVENT_CHUNK * 4 // 5)  # 400 + 400 + 200; cut at chunk ends it was 400 + 100 twice
    for index in range(EVENT_CHUNK * 2):
        tagged_log(f"l{index:04d}", "halacha")
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert datasets_project.count("dataset_insert") == 3  # full batches, not cut where a database chunk ends


def test_transient_insert_errors_are_retried(datasets_project, run_command):
    tagged_log("l1", "halacha")
    datasets_project.faults.add("dataset_insert", "status", status=503, times=2)
    datasets_project.faults.add("dataset_insert", "drop", times=1)
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert _row_ids(datasets_project, datasets_project.halacha) == [dataset_row_id("l1")]


def test_dataset_deleted_after_listing_fails_alone_and_exit_is_non_zero(datasets_project, run_command, monkeypatch):
    from braintrust_ops.clients.braintrust import BraintrustClient

    tagged_log("l1", "halacha", "translation")
    original = BraintrustClient.list_datasets

    def list_then_delete(self, project_id):
        # The race the sandbox cannot stage by itself: someone deletes a dataset mid-run.
        datasets = original(self, project_id)
        datasets_project.state.delete_dataset(datasets_project.translation)
        return datasets

    monkeypatch.setattr(BraintrustClient, "list_datasets", list_then_delete)
    with pytest.raises(CommandError, match="1 dataset\\(s\\) failed: Translation evals"):
        run_command("push_to_datasets")
    assert set(DatasetInsertion.objects.values_list("dataset_name", flat=True)) == {"Halacha evals", "Mixed"}
    run = CommandRun.objects.get(command="push_to_datasets")
    assert run.outcome == "failed" and "Translation evals" in run.error


def test_partial_failure_records_only_confirmed_batches_and_the_rerun_completes(
    datasets_project, run_command, ops_settings
):
    ops_settings(PUSH_BATCH_SIZE=2, HTTP_MAX_RETRIES=0)
    for index in range(5):
        tagged_log(f"l{index}", "halacha")
    # The first batch goes through; the second fails for good in this run.
    datasets_project.faults.add("dataset_insert", "latency", delay=0, times=1)
    datasets_project.faults.add("dataset_insert", "status", status=500, times=1)
    with pytest.raises(CommandError, match="Halacha evals"):
        run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert DatasetInsertion.objects.count() == 2
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert DatasetInsertion.objects.count() == 5
    assert len(datasets_project.state.dataset_rows(datasets_project.halacha)) == 5


def test_network_error_mid_push_leaves_a_consistent_ledger(datasets_project, run_command, ops_settings):
    ops_settings(PUSH_BATCH_SIZE=1, HTTP_MAX_RETRIES=0)
    tagged_log("l1", "halacha")
    tagged_log("l2", "halacha")
    datasets_project.faults.add("dataset_insert", "latency", delay=0, times=1)
    datasets_project.faults.add("dataset_insert", "drop", times=None)
    with pytest.raises(CommandError) as raised:
        run_command("push_to_datasets", "--dataset", "Halacha evals")
    message = str(raised.value)
    # Which dataset and which request failed, what to check, and that a rerun sends the rest.
    assert message.startswith("1 dataset(s) failed: Halacha evals (Braintrust POST /v1/dataset/{id}/insert ")
    assert f"after 1 attempt ({datasets_project.url}). Check the network and BRAINTRUST_API_URL" in message
    assert message.endswith("What was confirmed is recorded; run push_to_datasets again to send the rest.")
    ledger = set(DatasetInsertion.objects.values_list("log_id", flat=True))
    rows = {row["metadata"]["source_log_id"] for row in datasets_project.state.dataset_rows(datasets_project.halacha)}
    assert ledger == rows == {"l1"}


def test_crash_between_batches_resumes_without_duplicates(datasets_project, run_command, ops_settings, monkeypatch):
    from braintrust_ops.clients.braintrust import BraintrustClient

    ops_settings(PUSH_BATCH_SIZE=2)
    for index in range(5):
        tagged_log(f"l{index}", "halacha")
    original = BraintrustClient.insert_dataset_events
    calls = []

    def crash_on_second_batch(self, dataset_id, events):
        calls.append(len(events))
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands in for SIGKILL between two batches
        return original(self, dataset_id, events)

    monkeypatch.setattr(BraintrustClient, "insert_dataset_events", crash_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        run_command("push_to_datasets", "--dataset", "Halacha evals")
    monkeypatch.setattr(BraintrustClient, "insert_dataset_events", original)
    assert DatasetInsertion.objects.count() == 2
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert _row_ids(datasets_project, datasets_project.halacha) == sorted(dataset_row_id(f"l{i}") for i in range(5))
    assert CommandRun.objects.filter(command="push_to_datasets", outcome="failed").count() == 1


def test_invalid_key_stops_at_once(datasets_project, run_command, ops_settings):
    ops_settings(BRAINTRUST_API_KEY="bt-wrong-key-for-tests-000000")
    tagged_log("l1", "halacha")
    with pytest.raises(CommandError, match="Braintrust refused the API key"):
        run_command("push_to_datasets")
    assert datasets_project.requests == {"project": 1}  # refused on the first request, not retried


def test_unknown_project_fails_before_listing_datasets(datasets_project, run_command, ops_settings):
    unknown = "00000000-0000-4000-8000-000000000000"
    ops_settings(BRAINTRUST_PROJECT_ID=unknown)
    tagged_log("l1", "halacha")
    with pytest.raises(CommandError, match=rf"no project {unknown} .* Check BRAINTRUST_PROJECT_ID"):
        run_command("push_to_datasets")
    assert datasets_project.requests == {"project": 1}
    assert not DatasetInsertion.objects.exists()


def test_datasets_are_listed_for_the_configured_project_only(datasets_project, run_command):
    from braintrust_ops_sandbox import OTHER_PROJECT_ID

    datasets_project.state.add_dataset("Other project", '[[relevant_tags: ["halacha"]]]', project_id=OTHER_PROJECT_ID)
    tagged_log("l1", "halacha")
    run_command("push_to_datasets")
    assert "Other project" not in set(DatasetInsertion.objects.values_list("dataset_name", flat=True))


def test_tag_logs_push_runs_the_daily_pipeline(datasets_project, run_command):
    datasets_project.state.clear_logs()
    datasets_project.state.add_log(
        input="Shabbat question", output="answer", created=datetime.now(UTC) - timedelta(hours=1)
    )
    result = run_command("tag_logs", "--push")
    assert "Tagging finished." in result.stdout and "Inserted 2 rows into 3 datasets" in result.stdout
    assert {row["input"] for row in datasets_project.state.dataset_rows(datasets_project.halacha)} == {
        "Shabbat question"
    }


# --- size-capped inserts and rows refused on their own ---------------------------------------------


def _long_logs(count, chars, tag="halacha"):
    for index in range(count):
        tagged_log(f"long-{index:03d}", tag, input={"messages": [{"role": "user", "content": "א" * chars}]})


def test_inserts_are_cut_by_bytes_so_no_request_passes_the_cap(datasets_project, run_command, ops_settings):
    _long_logs(30, chars=40_000)  # about 240 KB each once escaped as requests sends them
    cap = 1_000_000
    ops_settings(PUSH_MAX_REQUEST_BYTES=cap)
    datasets_project.set_request_size_limit("dataset_insert", cap)  # Braintrust would answer 413 over it
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert len(datasets_project.state.dataset_rows(datasets_project.halacha)) == 30
    assert DatasetInsertion.objects.filter(status="inserted").count() == 30
    # Four rows a request: ceil(30 / 4) requests, none refused.
    assert datasets_project.count("dataset_insert") == 8


def test_a_batch_refused_as_too_large_is_split_until_it_goes_in(datasets_project, run_command, ops_settings):
    _long_logs(8, chars=20_000)
    ops_settings(PUSH_MAX_REQUEST_BYTES=5_000_000)
    datasets_project.set_request_size_limit("dataset_insert", 300_000)  # the server's limit is below ours
    result = run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert len(datasets_project.state.dataset_rows(datasets_project.halacha)) == 8
    assert "inserted 8, failed 0" in result.stdout


def test_a_400_saying_too_large_is_split_like_a_413(datasets_project, run_command, ops_settings):
    _long_logs(4, chars=20_000)
    datasets_project.set_request_size_limit("dataset_insert", 300_000)
    datasets_project.set_switches(size_limit_status=400)
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert len(datasets_project.state.dataset_rows(datasets_project.halacha)) == 4


def test_a_row_over_the_cap_on_its_own_is_recorded_as_failed_and_the_rest_goes_in(
    datasets_project, run_command, ops_settings
):
    tagged_log("small-1", "halacha")
    tagged_log("huge", "halacha", input={"text": "x" * 200_000})
    tagged_log("small-2", "halacha")
    ops_settings(PUSH_MAX_REQUEST_BYTES=100_000, PUSH_FAILURE_THRESHOLD=0.5)
    result = run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert _row_ids(datasets_project, datasets_project.halacha) == sorted(
        dataset_row_id(i) for i in ("small-1", "small-2")
    )
    failed = DatasetInsertion.objects.get(log_id="huge")
    # Given up at once (test_push_to_datasets_too_large): it can never fit, so it is not tried again.
    assert (failed.status, failed.attempts, failed.row_id) == ("failed", 3, "")
    assert "over the 100,000-byte request cap" in failed.last_error and "PUSH_MAX_REQUEST_BYTES" in failed.last_error
    assert "too large for any request, given up at once: 1" in result.stdout


def test_a_row_the_dataset_refuses_is_retried_up_to_the_attempt_limit_then_given_up(
    datasets_project, run_command, ops_settings
):
    tagged_log("ok", "halacha")
    tagged_log("refused", "halacha", input={"text": "x" * 60_000})
    datasets_project.set_request_size_limit("dataset_insert", 50_000)  # only Braintrust refuses it: a 413 on its own
    ops_settings(PUSH_MAX_ATTEMPTS=2, PUSH_FAILURE_THRESHOLD=1)
    for _ in range(3):
        result = run_command("push_to_datasets", "--dataset", "Halacha evals")
    entry = DatasetInsertion.objects.get(log_id="refused")
    assert (entry.status, entry.attempts) == ("failed", 2)
    assert "HTTP 413" in entry.last_error
    assert "given up after repeated refusals: 1" in result.stdout
    inserts = datasets_project.count("dataset_insert")
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert datasets_project.count("dataset_insert") == inserts  # a given-up row is not sent again


def test_a_failed_row_that_goes_in_later_becomes_an_insert(datasets_project, run_command, ops_settings):
    tagged_log("later", "halacha", input={"text": "x" * 60_000})
    datasets_project.set_request_size_limit("dataset_insert", 50_000)
    ops_settings(PUSH_FAILURE_THRESHOLD=1)
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    datasets_project.set_request_size_limit("dataset_insert", None)
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    entry = DatasetInsertion.objects.get(log_id="later")
    assert (entry.status, entry.last_error, entry.row_id) == ("inserted", "", dataset_row_id("later"))


def test_rows_refused_again_night_after_night_are_given_up_and_no_longer_block_their_dataset(
    datasets_project, run_command, ops_settings
):
    for log_id in ("big-1", "big-2"):
        tagged_log(log_id, "halacha", input={"text": "x" * 60_000})
    datasets_project.set_request_size_limit("dataset_insert", 50_000)
    ops_settings(PUSH_MAX_ATTEMPTS=2)
    for _ in range(2):
        with pytest.raises(CommandError, match="2 rows failed"):
            run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert set(DatasetInsertion.objects.values_list("status", "attempts")) == {("failed", 2)}
    result = run_command("push_to_datasets", "--dataset", "Halacha evals")  # nothing left to send: it succeeds
    assert "given up after repeated refusals: 2" in result.stdout


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_push_abandons_the_batch_in_flight_keeps_the_ledger_consistent_and_exits_with_its_code(
    datasets_project, run_command, ops_settings, monkeypatch, signum, code
):
    from braintrust_ops.clients.braintrust import BraintrustClient

    for index in range(6):
        tagged_log(f"l{index}", "halacha")
    ops_settings(PUSH_BATCH_SIZE=2)
    original = BraintrustClient.insert_dataset_events
    calls = []

    def signal_on_the_second_batch(self, dataset_id, events):
        calls.append(len(events))
        if len(calls) == 2:
            os.kill(os.getpid(), signum)
        return original(self, dataset_id, events)

    monkeypatch.setattr(BraintrustClient, "insert_dataset_events", signal_on_the_second_batch)
    with pytest.raises(CommandError, match="^Interrupted by SIG.*ledger holds only confirmed rows") as raised:
        run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert raised.value.returncode == code
    ledger = set(DatasetInsertion.objects.values_list("log_id", flat=True))
    assert ledger == {
        row["metadata"]["source_log_id"] for row in datasets_project.state.dataset_rows(datasets_project.halacha)
    }
    assert len(ledger) == 2  # the first batch, confirmed; the second abandoned before it was sent
    run = CommandRun.objects.get()
    assert run.outcome == "interrupted" and run.counters["datasets"][0]["inserted"] == 2

    monkeypatch.setattr(BraintrustClient, "insert_dataset_events", original)
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert len(datasets_project.state.dataset_rows(datasets_project.halacha)) == DatasetInsertion.objects.count() == 6
