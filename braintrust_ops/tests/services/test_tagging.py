"""tag_logs' events, the ones the runbook reads (README, "Reading the logs"), captured as structlog emits them."""

import pytest
from structlog.testing import capture_logs

from braintrust_ops.models import CommandRun
from braintrust_ops_sandbox import PROJECT_ID

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_ends_with_one_logs_tagged_event_holding_the_runs_counters(small_project, run_command):
    with capture_logs() as events:
        run_command("tag_logs")
    (tagged,) = [event for event in events if event["event"] == "logs_tagged"]
    assert tagged["log_level"] == "info"
    assert (tagged["fetched"], tagged["sent"], tagged["tagged"], tagged["no_tag_applied"], tagged["failed"]) == (
        3,
        3,
        2,
        1,
        0,
    )
    counters = CommandRun.objects.get().counters
    assert {key: value for key, value in tagged.items() if key not in ("event", "log_level")} == {
        key: value for key, value in counters.items() if key != "per_tag"
    }


def test_a_project_without_taggable_tags_says_so_in_an_event_naming_the_project(sandbox_env, run_command):
    sandbox_env.state.clear_tags()
    with capture_logs() as events:
        run_command("tag_logs")
    assert {"event": "no_taggable_tags", "log_level": "info", "project_id": PROJECT_ID} in events
