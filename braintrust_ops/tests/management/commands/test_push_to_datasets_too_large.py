"""A row no insert request can carry (over BRAINTRUST_OPS_PUSH_MAX_REQUEST_BYTES) is judged once, before
anything is sent: given up at once, named in the run's refused logs with why, never shortened into the
dataset, and no failure of the run (issue 19: it failed three nights, each skipping the prune)."""

import pytest

from braintrust_ops.models import CommandRun, DatasetInsertion
from braintrust_ops.services.datasets import dataset_row_id
from braintrust_ops.tests.factories import tagged_log

pytestmark = pytest.mark.django_db(transaction=True)

CAP = 100_000


@pytest.fixture
def one_row_too_large(datasets_project, ops_settings):
    tagged_log("small-1", "halacha")
    tagged_log("huge", "halacha", input={"text": "x" * 2 * CAP})
    tagged_log("small-2", "halacha")
    ops_settings(PUSH_MAX_REQUEST_BYTES=CAP)  # the failure threshold stays the default 10%
    return datasets_project


def _row_ids(sandbox) -> list[str]:
    return sorted(row["id"] for row in sandbox.state.dataset_rows(sandbox.halacha))


def test_a_row_no_request_can_carry_is_given_up_at_once_and_the_run_succeeds(one_row_too_large, run_command):
    result = run_command("push_to_datasets", "--dataset", "Halacha evals")
    run = CommandRun.objects.get()
    assert run.outcome == "succeeded" and run.error == ""
    assert _row_ids(one_row_too_large) == sorted(dataset_row_id(log_id) for log_id in ("small-1", "small-2"))
    entry = DatasetInsertion.objects.get(log_id="huge")
    assert (entry.status, entry.attempts, entry.row_id) == ("failed", 3, "")  # at BRAINTRUST_OPS_PUSH_MAX_ATTEMPTS
    (listed,) = run.counters["refused_logs"]
    assert listed.startswith('"huge" (Halacha evals): the row is ') and "over the 100,000-byte request cap" in listed
    assert "inserted 2, failed 0; too large for any request, given up at once: 1" in result.stdout
    warning = [line for line in result.stderr.splitlines() if "too large for any insert request" in line]
    assert warning == [
        "Rows too large for any insert request, given up at once: 1 (not a failure of the run; their ids and why: "
        "the run's refused logs in the admin, or -v 2). Add such a row to its dataset by hand in Braintrust if it "
        "matters; one under the braintrust SDK's 6 MB cap goes in after raising BRAINTRUST_OPS_PUSH_MAX_REQUEST_BYTES "
        "and deleting its ledger row (admin: Dataset insertions)."
    ]


def test_a_row_given_up_as_too_large_is_judged_once_and_not_listed_again(one_row_too_large, run_command):
    run_command("push_to_datasets", "--dataset", "Halacha evals")
    inserts = one_row_too_large.count("dataset_insert")
    second = run_command("push_to_datasets", "--dataset", "Halacha evals")
    assert one_row_too_large.count("dataset_insert") == inserts
    assert "given up after repeated refusals: 1" in second.stdout and "too large" not in second.output
    latest = CommandRun.objects.latest("started_at")
    assert latest.outcome == "succeeded" and latest.counters["refused_logs"] == []
    assert DatasetInsertion.objects.get(log_id="huge").attempts == 3


def test_verbosity_two_lists_each_row_given_up_as_too_large(one_row_too_large, run_command):
    result = run_command("push_to_datasets", "--dataset", "Halacha evals", verbosity=2)
    assert '  too large "huge" (Halacha evals): the row is ' in result.stderr
