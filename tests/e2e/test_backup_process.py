"""backup_logs as the weekly CronJob runs it, a process of its own: what its output path may be, and what a
run killed mid-write leaves for the next one."""

import os
import signal
import stat
import time
from datetime import UTC, datetime, timedelta

import pytest

from braintrust_ops.tests.backup_readers import leftovers, read_csv


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_output_that_is_not_a_regular_file_exits_non_zero_with_one_line_and_no_traceback(empty_sandbox, make_job, kind):
    empty_sandbox.state.add_log(input="a question", created=datetime.now(UTC) - timedelta(hours=1))
    job = make_job(empty_sandbox)
    path = job.workdir / "backup.csv"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        (job.workdir / "real.csv").write_text("last week's backup")
        path.symlink_to(job.workdir / "real.csv")
    result = job.run("backup_logs", "--output", str(path), timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"CommandError: The backup path {path} is a ") and "Give --output" in last
    if kind == "fifo":
        assert stat.S_ISFIFO(os.lstat(path).st_mode)
    else:
        assert path.is_symlink() and (job.workdir / "real.csv").read_text() == "last week's backup"
    assert empty_sandbox.requests == {}


def test_a_backup_killed_mid_write_leaves_a_temporary_file_that_the_next_run_removes(empty_sandbox, make_job):
    start = datetime.now(UTC) - timedelta(days=1)
    empty_sandbox.state.add_logs(500, created=lambda i: start + timedelta(seconds=i), input="a question")
    empty_sandbox.faults.add("btql", "latency", delay=0.5, times=None)  # a slow export: pages half a second apart
    job = make_job(empty_sandbox)
    output = job.workdir / "backup.csv"
    process = job.start("backup_logs", "--output", str(output))
    deadline = time.monotonic() + 60
    while not leftovers(job.workdir):  # the first page has arrived and is being written
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    [temporary] = leftovers(job.workdir)

    empty_sandbox.faults.clear()
    result = job.ok("backup_logs", "--output", str(output))
    assert os.listdir(job.workdir) == ["backup.csv"]  # the killed run's temporary file is gone
    assert len(read_csv(output)) == 500
    assert "logs_backup_stale_temporaries_removed" in result.stdout + result.stderr
