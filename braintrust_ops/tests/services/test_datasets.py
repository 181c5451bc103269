"""push_to_datasets' events, the ones the runbook reads (README, "Reading the logs"), captured as structlog
emits them."""

import pytest
from django.core.management.base import CommandError
from structlog.testing import capture_logs

from braintrust_ops.tests.factories import tagged_log

pytestmark = pytest.mark.django_db(transaction=True)


def _named(events, name):
    return [event for event in events if event["event"] == name]


def test_a_push_ends_with_one_datasets_pushed_event_holding_its_counts(datasets_project, run_command):
    tagged_log("l1", "halacha")
    tagged_log("l2", "halacha", "translation")
    with capture_logs() as events:
        run_command("push_to_datasets")
    assert _named(events, "datasets_pushed") == [
        {
            "event": "datasets_pushed",
            "log_level": "info",
            "subscribed": 3,
            "inserted": 5,  # Halacha evals 2, Translation evals 1, Mixed 2
            "failed": 0,
            "refused": 0,
            "given_up": 0,
            "failed_datasets": 0,
        }
    ]


def test_a_dataset_that_failed_is_named_in_an_error_event_and_counted_in_the_last(
    datasets_project, run_command, ops_settings
):
    ops_settings(HTTP_MAX_RETRIES=0)
    tagged_log("l1", "halacha")
    datasets_project.faults.add("dataset_insert", "status", status=500, times=1)
    with capture_logs() as events, pytest.raises(CommandError):
        run_command("push_to_datasets", "--dataset", "Halacha evals")
    (failed,) = _named(events, "dataset_push_failed")
    assert (failed["log_level"], failed["dataset"], failed["dataset_id"]) == (
        "error",
        "Halacha evals",
        datasets_project.halacha,
    )
    assert "HTTP 500" in failed["error"]
    (pushed,) = _named(events, "datasets_pushed")
    assert (pushed["inserted"], pushed["failed"], pushed["failed_datasets"]) == (0, 1, 1)
