"""backup_logs' closing event, the one the runbook reads (README, "Reading the logs")."""

from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from braintrust_ops.models import CommandRun

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_backup_ends_with_one_logs_backed_up_event_naming_its_file_and_size(sandbox_env, run_command, tmp_path):
    sandbox_env.state.clear_logs()
    start = datetime.now(UTC) - timedelta(hours=5)
    sandbox_env.state.add_logs(30, created=lambda i: start + timedelta(minutes=i), input="q", output="a")
    output = tmp_path / "backup.csv"
    with capture_logs() as events:
        run_command("backup_logs", "--output", str(output))
    (backed_up,) = [event for event in events if event["event"] == "logs_backed_up"]
    assert backed_up == {
        "event": "logs_backed_up",
        "log_level": "info",
        "rows": 30,
        "bytes": output.stat().st_size,
        "pages": CommandRun.objects.get().counters["pages"],
        "path": str(output),
    }
    assert backed_up["pages"] >= 1


def test_an_empty_window_is_said_in_its_own_event_with_the_window(sandbox_env, run_command, tmp_path):
    sandbox_env.state.clear_logs()
    with capture_logs() as events:
        run_command("backup_logs", "--output", str(tmp_path / "backup.csv"))
    (empty,) = [event for event in events if event["event"] == "logs_backup_empty"]
    run = CommandRun.objects.get()
    assert (empty["window_start"], empty["window_end"]) == (run.window_start.isoformat(), run.window_end.isoformat())
    assert not (tmp_path / "backup.csv").exists()
