"""backup_logs as the weekly CronJob runs it, a process of its own: what its output path may be, and what a
run killed mid-write leaves for the next one."""

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest


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
