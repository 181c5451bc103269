"""push_to_datasets: the seed review's edge cases (sections 2D, 2E, 3, 7, 11) that no other test pins down.

What the first version did by reading every dataset row (get_existing_log_ids_in_dataset) is now the
insertion ledger plus deterministic row ids; these tests pin what happens around it: huge target
datasets, rows this app did not write, a dataset read or an insert reply that fails.
"""

import pytest
from django.core.management.base import CommandError

from braintrust_ops.models import CommandRun, DatasetInsertion
from braintrust_ops.services.datasets import dataset_row_id
from braintrust_ops.tests.factories import tagged_log

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def one_dataset(datasets_project):
    """Only the Halacha dataset, so the request counts below are one dataset's."""
    datasets_project.state.clear_datasets()
    datasets_project.halacha = datasets_project.state.add_dataset("Halacha evals", '[[relevant_tags: ["halacha"]]]')[
        "id"
    ]
    return datasets_project


# --- 2D: matching -----------------------------------------------------------------------------


def test_tagged_logs_and_no_dataset_at_all_push_nothing_and_succeed(one_dataset, run_command):
    one_dataset.state.clear_datasets()
    tagged_log("l1", "halacha")
    result = run_command("push_to_datasets")
    assert "No subscribed datasets among 0 listed. Nothing to push." in result.stdout
    assert one_dataset.count("dataset_insert") == 0 and not DatasetInsertion.objects.exists()
    assert CommandRun.objects.get(command="push_to_datasets").outcome == "succeeded"


# --- 2E / 7.4 / 11.5: deduplication against large datasets -----------------------------------


def test_push_cost_does_not_grow_with_the_target_datasets_size(one_dataset, run_command):
    one_dataset.state.insert_rows(
        one_dataset.halacha, [{"id": f"older-{index}", "input": index} for index in range(50_000)]
    )
    tagged_log("l1", "halacha")
    tagged_log("l2", "halacha")
    run_command("push_to_datasets")
    assert one_dataset.count("dataset_insert") == 1 and one_dataset.count("dataset_fetch") == 0
    run_command("push_to_datasets")
    assert one_dataset.count("dataset_insert") == 1 and one_dataset.count("dataset_fetch") == 0
    assert len(one_dataset.state.dataset_rows(one_dataset.halacha)) == 50_002


# --- 2E / 3 / 7.3: dataset rows of unexpected shapes ------------------------------------------


FOREIGN_ROWS = [
    {"id": "manual-no-metadata", "input": None},
    {"id": "manual-list-input", "input": ["a", "list"], "metadata": None},
    {"id": "manual-null-id", "input": {"id": None}, "metadata": {"source_log_id": None}},
    {"id": "manual-empty-id", "input": {"id": ""}, "metadata": {"source_log_id": ""}},
    {"id": "manual-number-id", "input": {"id": 7}, "metadata": {"source_log_id": 7}},
    {"id": "manual-string-metadata", "input": "text", "metadata": "not a dict"},
    # Copied by hand from l3's row: names l3, but its id is not the one this app derives for l3.
    {"id": "manual-copy-of-l3", "input": "copied", "metadata": {"source_log_id": "l3"}},
]


def test_reconcile_ignores_rows_this_app_did_not_write_whatever_their_shape(one_dataset, run_command):
    tagged_log("l1", "halacha")
    tagged_log("l2", "halacha")
    run_command("push_to_datasets")
    DatasetInsertion.objects.all().delete()  # the ledger is lost
    one_dataset.state.insert_rows(one_dataset.halacha, FOREIGN_ROWS)
    tagged_log("l3", "halacha")

    result = run_command("push_to_datasets", "--reconcile")
    assert "Ledger repaired from the datasets: 2 rows" in result.stdout
    assert "Halacha evals: matched 3, already present 2, inserted 1, failed 0" in result.stdout
    ledger = dict(DatasetInsertion.objects.values_list("log_id", "row_id"))
    assert ledger == {log_id: dataset_row_id(log_id) for log_id in ("l1", "l2", "l3")}
    rows = {row["id"]: row for row in one_dataset.state.dataset_rows(one_dataset.halacha)}
    assert len(rows) == 3 + len(FOREIGN_ROWS)
    assert all(rows[row["id"]]["input"] == row["input"] for row in FOREIGN_ROWS)  # left as they were


def test_dataset_read_failing_mid_reconcile_fails_the_run_sends_nothing_and_the_rerun_completes(
    one_dataset, run_command, ops_settings
):
    ops_settings(HTTP_MAX_RETRIES=0)
    one_dataset.state.insert_rows(
        one_dataset.halacha, [{"id": f"manual-{index}", "input": index} for index in range(1500)]
    )
    tagged_log("l1", "halacha")
    one_dataset.faults.add("dataset_fetch", "latency", delay=0, times=1)  # the first page arrives
    one_dataset.faults.add("dataset_fetch", "drop", times=None)  # then the connection drops
    with pytest.raises(CommandError, match=r"POST /v1/dataset/\{id\}/fetch could not connect"):
        run_command("push_to_datasets", "--reconcile")
    assert one_dataset.count("dataset_fetch") == 2
    assert one_dataset.count("dataset_insert") == 0 and not DatasetInsertion.objects.exists()
    assert CommandRun.objects.get(command="push_to_datasets").outcome == "failed"

    one_dataset.faults.clear()
    run_command("push_to_datasets", "--reconcile")
    assert list(DatasetInsertion.objects.values_list("log_id", flat=True)) == ["l1"]
    assert [row["id"] for row in one_dataset.state.dataset_rows(one_dataset.halacha)].count(dataset_row_id("l1")) == 1


# --- 3: an insert reply that confirms nothing -------------------------------------------------


def test_insert_reply_that_does_not_confirm_the_rows_records_nothing_and_the_rerun_completes(one_dataset, run_command):
    tagged_log("l1", "halacha")
    tagged_log("l2", "halacha")
    one_dataset.faults.add("dataset_insert", "status", status=200, times=None)  # 200, but no row_ids
    with pytest.raises(CommandError, match="1 dataset\\(s\\) failed: Halacha evals .*did not confirm the 2 rows"):
        run_command("push_to_datasets")
    assert one_dataset.count("dataset_insert") == 1
    assert not DatasetInsertion.objects.exists()
    assert CommandRun.objects.get(command="push_to_datasets").outcome == "failed"

    one_dataset.faults.clear()
    run_command("push_to_datasets")
    assert sorted(DatasetInsertion.objects.values_list("log_id", flat=True)) == ["l1", "l2"]
    assert sorted(row["id"] for row in one_dataset.state.dataset_rows(one_dataset.halacha)) == sorted(
        dataset_row_id(log_id) for log_id in ("l1", "l2")
    )
