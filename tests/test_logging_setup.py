"""The stand-in project's logging (``sefaria/logging_setup.py``), as a CronJob runs it: a ``manage.py``
process with ``LOG_FORMAT=json`` writes the human summary on stdout and one JSON event a line on stderr."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from braintrust_ops_sandbox import Sandbox
from tests.e2e.conftest import database_factory, job_factory


@pytest.fixture
def job(tmp_path):
    """A Job (LOG_FORMAT=json, a migrated database of its own) against a sandbox holding three logs."""
    with database_factory(tmp_path) as new_database, Sandbox(seed=False) as sandbox:
        sandbox.state.add_tag("halacha", "Questions of Jewish law. dataset-tagging")
        recent = datetime.now(UTC) - timedelta(hours=2)
        for text in ("Is it permitted to cook on Shabbat?", "Please translate Genesis 1:1", "Weather?"):
            sandbox.state.add_log(input=text, output="...", created=recent)
        yield job_factory(new_database, tmp_path)(sandbox, BRAINTRUST_OPS_TAGGING_FAILURE_THRESHOLD="1")


def json_lines(stderr: str) -> list[dict]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "the run wrote no event"
    events = [json.loads(line) for line in lines]  # every line, or this raises naming the one that is not
    assert all(isinstance(event, dict) for event in events)
    return events


def test_with_log_format_json_each_stderr_line_is_one_event_and_the_summary_stays_on_stdout(job):
    job.sandbox.faults.add("messages", "status", status=400, times=1)
    result = job.ok("tag_logs", "--concurrency", "1")
    events = json_lines(result.stderr)
    for event in events:
        assert {"event", "level", "timestamp", "logger"} <= event.keys(), event
        assert datetime.fromisoformat(event["timestamp"]).utcoffset() == timedelta(0)
    (failed,) = [event for event in events if event["event"] == "log_tagging_failed"]
    assert (failed["level"], failed["logger"], failed["cost_an_attempt"]) == (
        "warning",
        "braintrust_ops.services.tagging.dispatch",
        True,
    )
    (tagged,) = [event for event in events if event["event"] == "logs_tagged"]
    assert (tagged["level"], tagged["sent"], tagged["failed"]) == ("info", 3, 1)
    assert "Sent to Claude: 3;" in result.stdout and not result.stdout.lstrip().startswith("{")


def test_with_log_format_json_a_standard_library_log_is_a_json_event_too(job):
    script = "import logging; logging.getLogger('some.library').warning('disk %s%% full', 93)"
    result = job.ok("shell", "-c", script)
    (event,) = json_lines(result.stderr)
    assert (event["event"], event["level"], event["logger"]) == ("disk 93% full", "warning", "some.library")
    assert "timestamp" in event
