"""The tagging loop's event for a log that failed: its id, why, and what the failure cost it."""

import pytest
from structlog.testing import capture_logs

from braintrust_ops.models import TaggedLog

pytestmark = pytest.mark.django_db(transaction=True)


def _failures(events):
    return [event for event in events if event["event"] == "log_tagging_failed"]


def test_a_log_refused_for_its_content_is_logged_with_the_attempt_it_cost(small_project, run_command, ops_settings):
    ops_settings(TAGGING_FAILURE_THRESHOLD=1, TAGGING_CONCURRENCY=1)
    small_project.faults.add("messages", "status", status=400, times=1)
    with capture_logs() as events:
        run_command("tag_logs")
    (failure,) = _failures(events)
    refused = TaggedLog.objects.get(status="failed")
    assert failure == {
        "event": "log_tagging_failed",
        "log_level": "warning",
        "log_id": refused.log_id,
        "error": refused.last_error,
        "cost_an_attempt": True,
        "will_retry": True,
    }
    assert "HTTP 400" in failure["error"]


def test_a_log_the_service_failed_is_logged_as_costing_no_attempt(small_project, run_command, ops_settings):
    ops_settings(TAGGING_FAILURE_THRESHOLD=1, TAGGING_CONCURRENCY=1, CLAUDE_MAX_RETRIES=0)
    small_project.faults.add("messages", "status", status=500, times=1)
    with capture_logs() as events:
        run_command("tag_logs")
    (failure,) = _failures(events)
    pending = TaggedLog.objects.get(status="pending")
    assert failure == {
        "event": "log_tagging_failed",
        "log_level": "warning",
        "log_id": pending.log_id,
        "error": pending.last_error,
        "cost_an_attempt": False,
    }
    assert "HTTP 500" in failure["error"] and pending.attempts == 0
