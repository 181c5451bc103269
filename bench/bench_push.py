"""push_to_datasets cost does not depend on the target dataset's size.

Target (issue 4): pushing 1,000 new logs into a dataset holding 100,000 rows makes at most
ceil(1000 / batch) + a constant HTTP requests and takes within 20% of the same push into an
empty dataset.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sandbox_process import ROOT, command_env, fresh_database, run_measured, sandbox_process  # noqa: E402

LOGS, EXISTING, BATCH = 1000, 100_000, 200


def _counts(url: str) -> dict:
    return requests.get(f"{url}/_sandbox/requests", timeout=10).json()


def push_run(existing_rows: int) -> dict:
    from braintrust_ops.sandbox import BRAINTRUST_KEY, PROJECT_ID

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
        before = _counts(url)
        seconds, rss, stdout = run_measured(["push_to_datasets"], env)
        after = _counts(url)
    requests_made = {route: after.get(route, 0) - before.get(route, 0) for route in after}
    return {
        "existing_rows": existing_rows,
        "inserted_logs": LOGS,
        "seconds": round(seconds, 2),
        "peak_rss_mb": rss,
        "requests": {route: count for route, count in requests_made.items() if count},
        "stdout_tail": stdout.strip().splitlines()[-1],
    }


def main() -> dict:
    empty = push_run(0)
    full = push_run(EXISTING)
    result = {
        "empty_dataset": empty,
        "dataset_with_100k_rows": full,
        "max_allowed_insert_requests": math.ceil(LOGS / BATCH),
        "time_ratio_full_vs_empty": round(full["seconds"] / empty["seconds"], 2),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    output = Path(__file__).resolve().parent / "results" / "push.json"
    output.write_text(json.dumps(main(), indent=2) + "\n")
