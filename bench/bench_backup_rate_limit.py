"""backup_logs under BTQL's rate limit: 50 pages at 20 requests a minute, no Retry-After, in scaled time.

Target (issue "Braintrust as it really behaves", item 8): the backup completes, and its own wall time
is at most 1.25 times the floor the limit sets.

The floor. A sliding window of 20 requests per W accepts the k-th request no earlier than
floor((k - 1) / 20) * W after the first. The backup makes 51 BTQL requests: 5,000 logs in pages of
100 rows (BRAINTRUST_OPS_BTQL_PAGE_SIZE=100; the first page is 100 rows anyway) are 50 non-empty
pages, then the empty page that ends the results. So the floor is floor(50 / 20) * W = 2W.

Scaled time. A minute becomes 60 / SCALE seconds: the sandbox's window is ``per_seconds=60/SCALE``, and
the client's backoff (BRAINTRUST_OPS_HTTP_BACKOFF_SECONDS, default 0.5 s) and its wait budget per
request (BRAINTRUST_OPS_HTTP_RATE_LIMIT_BUDGET_SECONDS, default 300 s) are divided by the same factor,
so every wait keeps its proportion to the window. What does not scale is the command's own work
(start-up excluded: the figure is the run record's ``elapsed_seconds``), so its share of the ratio is
SCALE times what it would be against the real limit; the run without a limit shows how much it is.

Each case runs REPEATS times against one sandbox process, the window emptied before each run, and
the median is compared. With Retry-After on, for comparison: the sandbox rounds it up to whole
seconds, as RFC 9110 has it; the window (2 s) is a whole number of seconds, so that rounding costs
little here.

Run: ``.venv/bin/python bench/bench_backup_rate_limit.py``; figures go to
``bench/results/backup_rate_limit.json``.
"""

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chat_logs import REALISTIC_LOG  # noqa: E402
from bench.sandbox_process import (  # noqa: E402
    run_and_write,
    ROOT,
    command_env,
    control,
    fresh_database,
    last_run,
    run_measured,
    sandbox_process,
)

RESULTS = Path(__file__).resolve().parent / "results" / "backup_rate_limit.json"

SCALE = 30
WINDOW_SECONDS = 60 / SCALE
LIMIT = 20
LOGS, PAGE_ROWS = 5000, 100
PAGES = LOGS // PAGE_ROWS
BTQL_REQUESTS = PAGES + 1  # and the empty page that ends the results
REPEATS = 3
TARGET_RATIO = 1.25
# The client's defaults (conf.py), divided by SCALE.
BACKOFF_SECONDS = 0.5 / SCALE
RATE_LIMIT_BUDGET_SECONDS = 300 / SCALE


def floor_seconds(accepted_requests: int, *, limit: int = LIMIT, window: float = WINDOW_SECONDS) -> float:
    """The earliest the last of ``accepted_requests`` can be accepted, after the first, under a
    sliding window of ``limit`` per ``window`` seconds: floor((k - 1) / limit) * window."""
    return (accepted_requests - 1) // limit * window


def _backup(url: str, env: dict, rate_limit: dict | None, *, database: str, output: str) -> dict:
    control(url, "DELETE", "rate_limits")  # a fresh, empty window for every run
    if rate_limit is not None:
        control(url, "POST", "rate_limits", {"route": "btql", **rate_limit})
    requests_before = control(url, "GET", "requests").get("btql", 0)
    limited_before = control(url, "GET", "rate_limited").get("btql", 0)
    process_seconds, rss_mb, _ = run_measured(["backup_logs", "--output", output], env)
    run = last_run(database, "backup_logs")
    btql_requests = control(url, "GET", "requests").get("btql", 0) - requests_before
    rate_limited = control(url, "GET", "rate_limited").get("btql", 0) - limited_before
    completed = run["outcome"] == "succeeded" and run["rows"] == LOGS and run["pages"] == PAGES
    if not completed:
        raise RuntimeError(f"the backup did not complete: {run}")
    if btql_requests - rate_limited != BTQL_REQUESTS:
        raise RuntimeError(f"expected {BTQL_REQUESTS} accepted BTQL requests, got {btql_requests - rate_limited}")
    return {
        "elapsed_seconds": run["elapsed_seconds"],
        "process_seconds": round(process_seconds, 2),
        "btql_requests": btql_requests,
        "rate_limited_429s": rate_limited,
        "rows": run["rows"],
        "pages": run["pages"],
        "outcome": run["outcome"],
        "peak_rss_mb": round(rss_mb, 1),
    }


def _case(url: str, env: dict, *, retry_after: bool, **where) -> dict:
    rate_limit = {"requests": LIMIT, "per_seconds": WINDOW_SECONDS, "retry_after": retry_after}
    runs = [_backup(url, env, rate_limit, **where) for _ in range(REPEATS)]
    median = statistics.median(run["elapsed_seconds"] for run in runs)
    floor = floor_seconds(BTQL_REQUESTS)
    return {
        "retry_after": retry_after,
        "runs": runs,
        "elapsed_seconds_median": median,
        "floor_seconds": floor,
        "ratio_to_floor": round(median / floor, 3),
        "rate_limited_429s_median": statistics.median(run["rate_limited_429s"] for run in runs),
        "all_completed": all(run["outcome"] == "succeeded" for run in runs),
    }


def main() -> dict:
    database = fresh_database()
    with (
        tempfile.TemporaryDirectory(prefix="bench-backup-rate-") as scratch,
        sandbox_process(logs=LOGS, hours_back=144, spread=True, log_fields=REALISTIC_LOG) as url,
    ):
        env = {
            **command_env(url, database),
            "BRAINTRUST_OPS_BTQL_PAGE_SIZE": str(PAGE_ROWS),
            "BRAINTRUST_OPS_HTTP_BACKOFF_SECONDS": repr(BACKOFF_SECONDS),
            "BRAINTRUST_OPS_HTTP_RATE_LIMIT_BUDGET_SECONDS": repr(RATE_LIMIT_BUDGET_SECONDS),
        }
        where = {"database": database, "output": str(Path(scratch) / "backup.csv")}
        unlimited = _backup(url, env, None, **where)
        without_retry_after = _case(url, env, retry_after=False, **where)
        with_retry_after = _case(url, env, retry_after=True, **where)
    result = {
        "scale": SCALE,
        "limit": {"route": "btql", "requests": LIMIT, "per_seconds": WINDOW_SECONDS, "real_per_seconds": 60},
        "client": {
            "BRAINTRUST_OPS_BTQL_PAGE_SIZE": PAGE_ROWS,
            "BRAINTRUST_OPS_HTTP_BACKOFF_SECONDS": BACKOFF_SECONDS,
            "BRAINTRUST_OPS_HTTP_RATE_LIMIT_BUDGET_SECONDS": RATE_LIMIT_BUDGET_SECONDS,
        },
        "logs": LOGS,
        "pages": PAGES,
        "btql_requests_accepted": BTQL_REQUESTS,
        "floor_seconds": floor_seconds(BTQL_REQUESTS),
        "floor_real_seconds": floor_seconds(BTQL_REQUESTS, window=60),
        "no_rate_limit": unlimited,
        "no_retry_after": without_retry_after,
        "retry_after": with_retry_after,
        "target": {
            "ratio_to_floor_max": TARGET_RATIO,
            "met": without_retry_after["all_completed"] and without_retry_after["ratio_to_floor"] <= TARGET_RATIO,
        },
    }
    _print(result)
    return result


def _print(result: dict) -> None:
    print(
        f"{result['logs']:,} logs, {result['pages']} pages + the empty one = {result['btql_requests_accepted']} BTQL "
        f"requests; limit {LIMIT} per {WINDOW_SECONDS:g} s (a minute / {SCALE}); floor {result['floor_seconds']:g} s"
    )
    print(f"no limit: {result['no_rate_limit']['elapsed_seconds']:.3f} s")
    for key, label in (("no_retry_after", "no Retry-After"), ("retry_after", "Retry-After")):
        case = result[key]
        each = ", ".join(f"{run['elapsed_seconds']:.3f}" for run in case["runs"])
        print(
            f"{label}: median {case['elapsed_seconds_median']:.3f} s ({each}), x{case['ratio_to_floor']} the floor, "
            f"{case['rate_limited_429s_median']:g} 429s (median), completed: {case['all_completed']}"
        )
    target = result["target"]
    print(f"target <= x{target['ratio_to_floor_max']} without Retry-After: {'met' if target['met'] else 'MISSED'}")


if __name__ == "__main__":
    run_and_write(main, RESULTS)
