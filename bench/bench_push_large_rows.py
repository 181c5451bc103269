"""push_to_datasets with rows of about 40 KB: requests cut by bytes, none refused as too large.

Target (issue "Braintrust as it really behaves", item 7): 1,000 tagged logs of about 40 KB each, all
subscribed to one dataset, pushed with the defaults (at most 200 events and 5 MiB a request), make at
most ceil(total encoded bytes / 5 MiB) + 3 requests to ``dataset_insert``, and no request is answered
413 by the sandbox, whose 6 MiB limit on a request body (the braintrust SDK's own cap) stays on.

"About 40 KB" is the event as it is sent: requests encodes ``json=`` with ``ensure_ascii``, so each
Hebrew letter of the quoted sources is 6 bytes (``\\u05d0``). The logs are sized for that
(``bench.chat_logs.long_chat_log``), and the bytes reported are measured on the events the push
builds from the database (``event_for`` and ``encoded_size``, the functions the push itself uses),
in a ``manage.py shell`` child, before the push. Statuses come from the sandbox's response log.

Run: ``.venv/bin/python bench/bench_push_large_rows.py``; figures go to ``bench/results/push_large_rows.json``.
"""

import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chat_logs import long_chat_log  # noqa: E402
from bench.sandbox_process import (  # noqa: E402
    run_and_write,
    ROOT,
    command_env,
    control,
    fresh_database,
    last_run,
    response_statuses,
    run_measured,
    sandbox_process,
)

RESULTS = Path(__file__).resolve().parent / "results" / "push_large_rows.json"

LOGS = 1000
EVENT_BYTES = 40_000
# What event_for adds around the log's input, output and metadata (its id, tags and provenance): about
# 370 bytes; the sizes reported are measured, this only aims the log's size.
EVENT_OVERHEAD = 370
CAP = 5 * 2**20  # BRAINTRUST_OPS_PUSH_MAX_REQUEST_BYTES, the default
SANDBOX_LIMIT = 6 * 2**20
LOOKUPS = ("project", "dataset_list", "project_tag")

_EVENT_SIZES = """
import json
from braintrust_ops.insert_batches import encoded_size
from braintrust_ops.models import TaggedLog
from braintrust_ops.services.datasets import event_for
logs = TaggedLog.objects.filter(status=TaggedLog.Status.TAGGED).prefetch_related("tags")
print(json.dumps([encoded_size(event_for(log, log.tag_names)) for log in logs.iterator(chunk_size=200)]))
"""


def _event_sizes(env: dict) -> list[int]:
    """Bytes of each event the push will send, as the push sizes it."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", _EVENT_SIZES], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> dict:
    fields = long_chat_log(EVENT_BYTES - EVENT_OVERHEAD, ensure_ascii=True)
    database = fresh_database()
    with tempfile.TemporaryDirectory(prefix="bench-push-large-") as scratch:
        response_log = str(Path(scratch) / "responses.log")
        with sandbox_process(
            logs=LOGS,
            log_fields=fields,
            tags=["halacha"],
            datasets=[["long answers", '[[relevant_tags: ["halacha"]]]']],
            response_log=response_log,
        ) as url:
            limits = control(url, "GET", "request_size_limits")["request_size_limits"]
            if limits.get("dataset_insert") != SANDBOX_LIMIT:
                raise RuntimeError(f"the sandbox's limit on dataset_insert is not 6 MiB: {limits}")
            env = command_env(url, database)
            # Every log gets the tag: the sandbox's fake Claude tags "Shabbat" text as halacha.
            env["BRAINTRUST_OPS_TAGGING_MAX_LOGS_PER_RUN"] = str(LOGS)
            env["BRAINTRUST_OPS_TAGGING_MAX_INPUT_TOKENS_PER_RUN"] = str(LOGS * 10_000)
            subprocess.run(
                [sys.executable, "manage.py", "tag_logs", "--concurrency", "16"],
                cwd=ROOT, env=env, check=True, capture_output=True,
            )
            sizes = _event_sizes(env)
            if len(sizes) != LOGS:
                raise RuntimeError(f"expected {LOGS} tagged logs, found {len(sizes)}")
            before = control(url, "GET", "requests")
            statuses_before = response_statuses(response_log, "/insert")
            _, rss_mb, stdout = run_measured(["push_to_datasets"], env)
            after = control(url, "GET", "requests")
            statuses = response_statuses(response_log, "/insert") - statuses_before
            run = last_run(database, "push_to_datasets")
    requests_made = {route: after[route] - before.get(route, 0) for route in after if after[route] != before.get(route, 0)}
    total = sum(sizes)
    inserts = requests_made.get("dataset_insert", 0)
    bound = math.ceil(total / CAP) + 3
    inserted = sum(dataset["inserted"] for dataset in run["datasets"])
    result = {
        "logs": LOGS,
        "event_bytes": {
            "min": min(sizes),
            "median": statistics.median(sizes),
            "max": max(sizes),
            "total": total,
            "encoding": "requests json= (ensure_ascii: a Hebrew letter is 6 bytes)",
        },
        "cap_bytes": CAP,
        "batch_size": 200,
        "sandbox_request_limit_bytes": SANDBOX_LIMIT,
        "requests": requests_made,
        "dataset_insert_requests": inserts,
        "ideal_insert_requests": math.ceil(total / CAP),
        "bound_insert_requests": bound,
        "insert_statuses": {str(status): count for status, count in sorted(statuses.items())},
        "status_413": statuses.get(413, 0),
        "inserted": inserted,
        "refused": sum(dataset["refused"] for dataset in run["datasets"]),
        "outcome": run["outcome"],
        "push_seconds": run["elapsed_seconds"],
        "peak_rss_mb": round(rss_mb, 1),
        "stdout_tail": stdout.strip().splitlines()[-1],
        "target": {
            "met": inserts <= bound and statuses.get(413, 0) == 0 and inserted == LOGS and run["outcome"] == "succeeded"
        },
    }
    _print(result)
    return result


def _print(result: dict) -> None:
    sizes = result["event_bytes"]
    print(
        f"{result['logs']:,} events of {sizes['min']:,}-{sizes['max']:,} bytes encoded, {sizes['total']:,} in all; "
        f"cap {result['cap_bytes']:,} bytes a request"
    )
    print(
        f"dataset_insert requests: {result['dataset_insert_requests']} (ceil(total / cap) = "
        f"{result['ideal_insert_requests']}, bound {result['bound_insert_requests']}); statuses "
        f"{result['insert_statuses']}; 413s: {result['status_413']}"
    )
    print(f"all requests: {result['requests']}")
    print(f"inserted {result['inserted']:,}, refused {result['refused']}, push {result['push_seconds']:.2f} s, peak RSS {result['peak_rss_mb']} MB")
    print(f"target: {'met' if result['target']['met'] else 'MISSED'}")


if __name__ == "__main__":
    run_and_write(main, RESULTS)
