"""push_to_datasets cost does not depend on the target dataset's size.

Target (issue 4): pushing 1,000 new logs into a dataset holding 100,000 rows makes at most
ceil(1000 / batch) + a constant HTTP requests and takes within 20% of the same push into an
empty dataset.

Each case pushes five times (the ledger emptied in between) and compares the medians of the push's
own elapsed time, as its run record gives it: one whole-process timing per case was mostly Python
and Django starting up, and swung by ±40% from run to run.
"""

import json
import math
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sandbox_process import ROOT, command_env, fresh_database, run_measured, sandbox_process  # noqa: E402

LOGS, EXISTING, BATCH = 1000, 100_000, 200
REPEATS = 5


def _counts(url: str) -> dict:
    return requests.get(f"{url}/_sandbox/requests", timeout=10).json()


def _push_elapsed_seconds(database: str) -> float:
    """The push's own time, from its run record: the process's start-up is the same in both cases and
    would only blur the comparison."""
    with sqlite3.connect(database) as connection:
        (counters,) = connection.execute(
            "SELECT counters FROM braintrust_ops_commandrun WHERE command = 'push_to_datasets' ORDER BY id DESC"
        ).fetchone()
    return json.loads(counters)["elapsed_seconds"]


def _forget_the_pushes(database: str) -> None:
    """Empty the ledger so the next push sends the same 1,000 rows again (Braintrust upserts them by id)."""
    with sqlite3.connect(database) as connection:
        connection.execute("DELETE FROM braintrust_ops_datasetinsertion")


def push_run(existing_rows: int) -> dict:
    from braintrust_ops_sandbox import BRAINTRUST_KEY, PROJECT_ID

    database = fresh_database()
    with sandbox_process(logs=LOGS, tags=["halacha"], datasets=[["big", '[[relevant_tags: ["halacha"]]]']]) as url:
        headers = {"Authorization": f"Bearer {BRAINTRUST_KEY}"}
        listing = requests.get(f"{url}/v1/dataset", params={"project_id": PROJECT_ID}, headers=headers, timeout=30)
        dataset = listing.json()["objects"][0]
        for start in range(0, existing_rows, 1000):
            events = [{"id": f"old-{i}", "input": f"old row {i}", "expected": "x"} for i in range(start, start + 1000)]
            requests.post(f"{url}/v1/dataset/{dataset['id']}/insert", json={"events": events}, headers=headers, timeout=60)
        env = command_env(url, database)
        # Every log gets the tag: the sandbox's fake Claude tags "Shabbat"/"Talmud" text as halacha.
        env["BRAINTRUST_OPS_TAGGING_MAX_LOGS_PER_RUN"] = str(LOGS)
        subprocess.run([sys.executable, "manage.py", "tag_logs", "--concurrency", "16"], cwd=ROOT, env=env, check=True, capture_output=True)
        elapsed, request_counts = [], []
        for _ in range(REPEATS):
            _forget_the_pushes(database)
            before = _counts(url)
            _, rss, stdout = run_measured(["push_to_datasets"], env)
            after = _counts(url)
            elapsed.append(_push_elapsed_seconds(database))
            request_counts.append({route: after[route] - before.get(route, 0) for route in after if after[route] != before.get(route, 0)})
    if any(counts != request_counts[0] for counts in request_counts):
        raise RuntimeError(f"the pushes did not all make the same requests: {request_counts}")
    return {
        "existing_rows": existing_rows,
        "inserted_logs": LOGS,
        "push_seconds_each": elapsed,
        "push_seconds_median": round(statistics.median(elapsed), 3),
        "peak_rss_mb": rss,
        "requests": request_counts[0],
        "stdout_tail": stdout.strip().splitlines()[-1],
    }


def main() -> dict:
    empty = push_run(0)
    full = push_run(EXISTING)
    result = {
        "repeats": REPEATS,
        "empty_dataset": empty,
        "dataset_with_100k_rows": full,
        "max_allowed_insert_requests": math.ceil(LOGS / BATCH),
        "median_ratio_full_vs_empty": round(full["push_seconds_median"] / empty["push_seconds_median"], 2),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    output = Path(__file__).resolve().parent / "results" / "push.json"
    output.write_text(json.dumps(main(), indent=2) + "\n")
