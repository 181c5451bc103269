"""The nightly and weekly jobs as the CronJobs run them: separate processes, faults, kills, reruns."""

import csv
import gzip
import io
import signal
import time
from datetime import timedelta

import pytest

from braintrust_ops.services.runs import ABANDONED
from braintrust_ops_sandbox import ANTHROPIC_KEY, BRAINTRUST_KEY, PROJECT_ID, Sandbox
from tests.e2e.conftest import SEED_NOW, database_factory, job_factory

SINCE = (SEED_NOW - timedelta(hours=24)).isoformat()
UNTIL = (SEED_NOW + timedelta(minutes=1)).isoformat()
WINDOW = ("--since", SINCE, "--until", UNTIL)
BACKUP_WINDOW = ("--since", (SEED_NOW - timedelta(days=7)).isoformat(), "--until", UNTIL)
TRANSIENT = {
    "project": [("status", 429), ("status", 503), ("drop", None), ("invalid_json", None)],
    "project_tag": [("status", 429), ("status", 500), ("drop", None), ("invalid_json", None)],
    "dataset_list": [("status", 503), ("drop", None), ("invalid_json", None)],
    "btql": [("status", 429), ("status", 500), ("status", 503), ("drop", None), ("invalid_json", None)],
    "dataset_insert": [("status", 429), ("status", 500), ("drop", None), ("invalid_json", None)],
    # Not a garbled Messages reply: one log costs at most CLAUDE_MAX_RETRIES + 1 requests, the SDK's retries,
    # and it does not ask again after a 200 it cannot read, so that log waits for the next run (no attempt
    # used). The fault matrix pins that case: the next run labels it.
    "messages": [("status", 429), ("status", 500), ("status", 529), ("drop", None)],
}


def add_transient_faults(sandbox: Sandbox, share: float) -> None:
    """About ``share`` of every route's requests fail, spread over that route's transient faults."""
    for route, faults in TRANSIENT.items():
        each = 1 - (1 - share) ** (1 / len(faults))
        for kind, status in faults:
            options = {"status": status, "retry_after": 0} if kind == "status" else {}
            sandbox.faults.add(route, kind, times=None, probability=each, **options)


def dataset_contents(sandbox: Sandbox) -> dict[str, dict[str, tuple]]:
    """Per dataset name: row id -> (input, expected, assigned tags)."""
    return {
        dataset["name"]: {
            row["id"]: (repr(row["input"]), repr(row["expected"]), tuple(row["metadata"]["assigned_tags"]))
            for row in sandbox.state.dataset_rows(dataset["id"])
        }
        for dataset in sandbox.state.datasets(PROJECT_ID)
    }


def labels(job) -> set[tuple]:
    return set(
        job.database.rows(
            "SELECT l.log_id, l.status, t.name FROM braintrust_ops_taggedlog l "
            "LEFT JOIN braintrust_ops_logtag t ON t.tagged_log_id = l.id"
        )
    )


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def fault_free(tmp_path_factory):
    """The reference, made once for the module: the same seed, no faults, one tag_logs --push and one
    backup. (datasets, labels, backup bytes)"""
    directory = tmp_path_factory.mktemp("fault-free")
    with database_factory(directory) as new_database, Sandbox(seed=True, now=SEED_NOW) as sandbox:
        job = job_factory(new_database, directory)(sandbox)
        job.ok("tag_logs", "--push", *WINDOW)
        job.ok("backup_logs", *BACKUP_WINDOW, "--output", str(job.workdir / "backup.csv"))
        yield dataset_contents(sandbox), labels(job), (job.workdir / "backup.csv").read_bytes()


def backup_rows(data: bytes) -> list[dict]:
    """The backup's rows, every column, in log id order."""
    rows = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    return sorted(rows, key=lambda row: row["id"])


def test_pipeline_under_20_percent_transient_faults_ends_exactly_like_the_fault_free_run(
    seeded_sandbox, make_job, fault_free
):
    expected_datasets, expected_labels, expected_backup = fault_free
    add_transient_faults(seeded_sandbox, share=0.2)
    # One more SDK retry than the default: at a 20% fault rate, five failures in a row would otherwise
    # hit one log in about a thousand runs. Small BTQL pages, so the logs are read in many requests.
    job = make_job(seeded_sandbox, BRAINTRUST_OPS_CLAUDE_MAX_RETRIES="6", BRAINTRUST_OPS_BTQL_PAGE_SIZE="25")
    job.ok("tag_logs", "--push", *WINDOW, timeout=300)
    # And at least one page of the backup read again, whatever the 20% spare it: a reply that is not
    # JSON, then one cut off mid-body (each fires on the first request the random rules let through).
    seeded_sandbox.faults.add("btql", "invalid_json", times=1)
    seeded_sandbox.faults.add("btql", "partial", times=1)
    job.ok("backup_logs", *BACKUP_WINDOW, "--output", str(job.workdir / "backup.csv"), timeout=300)
    assert all(rule["times"] is None for rule in seeded_sandbox.faults.list())  # the two one-shot faults fired

    assert dataset_contents(seeded_sandbox) == expected_datasets
    assert labels(job) == expected_labels
    # Every column of every row, _xact_id and _pagination_key included: both sandboxes ingested the same
    # seed in the same order, and nothing the runs do changes a log, so no column may differ.
    backup, expected_rows = backup_rows((job.workdir / "backup.csv").read_bytes()), backup_rows(expected_backup)
    assert [row["id"] for row in backup] == [row["id"] for row in expected_rows] and len(expected_rows) > 100
    for row, expected_row in zip(backup, expected_rows, strict=True):
        assert row == expected_row, row["id"]
    inserted = sum(len(rows) for rows in expected_datasets.values())
    assert job.database.rows("SELECT COUNT(*) FROM braintrust_ops_datasetinsertion") == [(inserted,)]
    logs = len({label[0] for label in expected_labels})
    assert seeded_sandbox.count("messages") > logs  # the faults did fire, and were retried


def test_sigkill_of_tag_logs_mid_run_then_a_rerun_matches_the_fault_free_run(seeded_sandbox, make_job, fault_free):
    _, expected_labels, _ = fault_free
    seeded_sandbox.claude_latency = 0.05
    job = make_job(seeded_sandbox)
    process = job.start("tag_logs", *WINDOW, "--concurrency", "2")
    wait_until(lambda: seeded_sandbox.count("messages") >= 40)
    process.send_signal(signal.SIGKILL)
    process.wait(30)

    stored_before = job.database.rows("SELECT COUNT(*) FROM braintrust_ops_taggedlog WHERE status = 'tagged'")[0][0]
    calls_before = seeded_sandbox.count("messages")
    assert stored_before > 0
    seeded_sandbox.claude_latency = 0
    job.ok("tag_logs", *WINDOW)

    total = job.database.rows("SELECT COUNT(*) FROM braintrust_ops_taggedlog")[0][0]
    assert seeded_sandbox.count("messages") - calls_before == total - stored_before  # no stored label re-asked
    assert labels(job) == expected_labels
    outcomes = job.database.rows("SELECT outcome, error FROM braintrust_ops_commandrun ORDER BY id")
    assert outcomes == [("failed", ABANDONED), ("succeeded", "")]


def test_sigkill_of_push_between_batches_then_a_rerun_duplicates_nothing(seeded_sandbox, make_job, fault_free):
    expected_datasets, _, _ = fault_free
    job = make_job(seeded_sandbox, BRAINTRUST_OPS_PUSH_BATCH_SIZE="5")
    job.ok("tag_logs", *WINDOW)
    seeded_sandbox.faults.add("dataset_insert", "latency", delay=0.2, times=None)
    process = job.start("push_to_datasets")
    wait_until(lambda: seeded_sandbox.count("dataset_insert") >= 4)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    seeded_sandbox.faults.clear()

    job.ok("push_to_datasets")
    assert dataset_contents(seeded_sandbox) == expected_datasets
    inserted = sum(len(rows) for rows in expected_datasets.values())
    assert job.database.rows("SELECT COUNT(*) FROM braintrust_ops_datasetinsertion") == [(inserted,)]


def test_two_tag_logs_started_together_one_works_and_the_other_refuses(seeded_sandbox, make_job):
    seeded_sandbox.claude_latency = 0.1
    job = make_job(seeded_sandbox)
    processes = [job.start("tag_logs", *WINDOW) for _ in range(2)]
    results = [(process.wait(120), *process.communicate()) for process in processes]

    assert sorted(code for code, _, _ in results) == [0, 1]
    (refused_stderr,) = [stderr for code, _, stderr in results if code == 1]
    assert "Another tag_logs run is in progress" in refused_stderr
    logs = job.database.rows("SELECT COUNT(*) FROM braintrust_ops_taggedlog")[0][0]
    assert seeded_sandbox.count("messages") == logs  # every log asked about once


def test_rerunning_every_command_on_the_same_window_changes_nothing(seeded_sandbox, make_job):
    job = make_job(seeded_sandbox)
    output = job.workdir / "backup.csv"
    job.ok("tag_logs", "--push", *WINDOW)
    job.ok("backup_logs", *BACKUP_WINDOW, "--output", str(output))
    before = (dataset_contents(seeded_sandbox), labels(job), output.read_bytes(), dict(seeded_sandbox.requests))

    job.ok("tag_logs", "--push", *WINDOW)
    job.ok("backup_logs", *BACKUP_WINDOW, "--output", str(output))
    after = (dataset_contents(seeded_sandbox), labels(job), output.read_bytes(), dict(seeded_sandbox.requests))
    assert after[:3] == before[:3]
    assert after[3]["messages"] == before[3]["messages"]
    assert after[3].get("dataset_insert") == before[3].get("dataset_insert")


def test_permanent_faults_exit_non_zero_with_one_clear_message_and_no_retry_storm(seeded_sandbox, make_job):
    job = make_job(seeded_sandbox, BRAINTRUST_API_KEY="bt-wrong-key-for-tests-000000")
    result = job.run("tag_logs", *WINDOW)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("CommandError: Braintrust refused the API key")
    assert seeded_sandbox.requests == {"project": 1}

    job = make_job(seeded_sandbox, database=job.database, ANTHROPIC_API_KEY="sk-wrong-key-for-tests-000000")
    result = job.run("tag_logs", *WINDOW, "--concurrency", "4")
    assert result.returncode == 1 and "Anthropic refused the API key" in result.stderr.strip().splitlines()[-1]
    assert seeded_sandbox.count("messages") <= 4
    assert job.database.rows("SELECT DISTINCT status FROM braintrust_ops_taggedlog") == [("pending",)]

    unknown = "00000000-0000-4000-8000-000000000000"
    job = make_job(seeded_sandbox, database=job.database, BRAINTRUST_PROJECT_ID=unknown)
    for command in (("tag_logs",), ("push_to_datasets",), ("backup_logs", "--output", str(job.workdir / "backup.csv"))):
        before = seeded_sandbox.requests
        result = job.run(*command)
        assert result.returncode == 1
        assert f"Braintrust has no project {unknown}" in result.stderr.strip().splitlines()[-1]
        assert seeded_sandbox.requests == {**before, "project": before.get("project", 0) + 1}
    assert not (job.workdir / "backup.csv").exists()

    job = make_job(seeded_sandbox, database=job.database)
    job.ok("tag_logs", *WINDOW)
    seeded_sandbox.faults.add("dataset_insert", "latency", delay=0.5, times=1)
    process = job.start("push_to_datasets")
    wait_until(lambda: seeded_sandbox.count("dataset_insert") >= 1)  # listed, first insert under way
    halacha = next(d for d in seeded_sandbox.state.datasets(PROJECT_ID) if d["name"] == "Halacha evals")
    seeded_sandbox.state.delete_dataset(halacha["id"])
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "1 dataset(s) failed: Halacha evals" in stderr.strip().splitlines()[-1]
    translation = next(d for d in seeded_sandbox.state.datasets(PROJECT_ID) if d["name"] == "Translation evals")
    assert seeded_sandbox.state.dataset_rows(translation["id"]), "the other datasets were still fed"


def test_no_secret_appears_in_any_output_log_line_csv_or_database_row(seeded_sandbox, make_job):
    wrong_key = "bt-wrong-key-for-tests-000000"
    job = make_job(seeded_sandbox)
    job.ok("tag_logs", "--push", *WINDOW)
    job.ok("backup_logs", *BACKUP_WINDOW, "--output", str(job.workdir / "backup.csv"))
    job.ok("backup_logs", *BACKUP_WINDOW, "--format", "jsonl", "--gzip", "--output", str(job.workdir / "b.jsonl.gz"))
    job.run("tag_logs", "--dry-run", *WINDOW)
    failing = make_job(seeded_sandbox, database=job.database, BRAINTRUST_API_KEY=wrong_key)
    assert failing.run("push_to_datasets").returncode == 1
    seeded_sandbox.faults.add("messages", "status", status=500, times=None)
    assert job.run("tag_logs", "--retag", *WINDOW, "--limit", "3").returncode == 1

    # The gzip file opened: its compressed bytes could never show a key, whatever the file held.
    jsonl = gzip.decompress((job.workdir / "b.jsonl.gz").read_bytes()).decode()
    assert jsonl.count("\n") > 100  # the check below reads a real backup, not an empty one
    texts = [
        *job.outputs,
        *failing.outputs,
        job.database.dump(),
        (job.workdir / "backup.csv").read_text("utf-8-sig"),
        jsonl,
    ]
    for secret in (BRAINTRUST_KEY, ANTHROPIC_KEY, wrong_key):
        for text in texts:
            assert secret not in text
