"""What write-back costs a night: its requests per 1,000 labelled logs, and the night's wall time with and
without it (the command's own time from the run record, median of 3 runs each, a fresh database each).

The same 1,000 logs are labelled each time; with BRAINTRUST_OPS_WRITE_BACK the labels then go onto the
source logs in requests of at most BRAINTRUST_OPS_PUSH_BATCH_SIZE events (200 by default), so the bound is
ceil(labelled with a tag / 200) requests. The benchmark fails if a run does not label every log, or if
write-back sends more requests than that.
"""

import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sandbox_process import (  # noqa: E402
    command_env,
    control,
    fresh_database,
    last_run,
    run_and_write,
    run_measured,
    sandbox_process,
)

TAGS = ["halacha", "translation", "sources", "hebrew"]
LOGS = 1000
RUNS = 3
FIELDS = {
    "input": {
        "messages": [{"role": "user", "content": "Where does the Talmud discuss lighting Shabbat candles? " * 3}]
    },
    "output": "The Talmud discusses it in Shabbat 21b-23b, and Rashi explains the source. " * 12,
}


def _night(url: str, *, write_back: bool) -> dict:
    env = command_env(url, fresh_database())
    env["BRAINTRUST_OPS_TAGGING_MAX_LOGS_PER_RUN"] = str(LOGS)
    env["BRAINTRUST_OPS_WRITE_BACK"] = "true" if write_back else "false"
    before = control(url, "GET", "requests").get("project_logs_insert", 0)
    run_measured(["tag_logs"], env)
    run = last_run(env["DATABASE_URL"].removeprefix("sqlite:///"), "tag_logs")
    if run["outcome"] != "succeeded" or run["tagged"] + run["no_tag_applied"] != LOGS:
        raise RuntimeError(f"tag_logs did not label every log: {run}")
    return {
        "seconds": run["elapsed_seconds"],
        "requests": control(url, "GET", "requests").get("project_logs_insert", 0) - before,
        "written": run["written_back"],
        "tagged": run["tagged"],
    }


def main() -> dict:
    with sandbox_process(logs=LOGS, tags=TAGS, log_fields=FIELDS) as url:
        without = [_night(url, write_back=False) for _ in range(RUNS)]
        with_write_back = [_night(url, write_back=True) for _ in range(RUNS)]
    tagged = with_write_back[0]["tagged"]
    bound = math.ceil(tagged / 200)
    requests = max(night["requests"] for night in with_write_back)
    if requests > bound or any(night["requests"] for night in without):
        raise RuntimeError(f"write-back sent {requests} requests for {tagged} labels (bound {bound})")
    off, on = (statistics.median(night["seconds"] for night in nights) for nights in (without, with_write_back))
    return {
        "logs": LOGS,
        "labelled_with_a_tag": tagged,
        "write_back_requests": requests,
        "write_back_requests_per_1000_labelled": round(1000 * requests / tagged, 2),
        "bound": bound,
        "median_seconds_without": off,
        "median_seconds_with": on,
        "with_to_without": round(on / off, 3),
        "runs": RUNS,
    }


if __name__ == "__main__":
    run_and_write(main, Path(__file__).resolve().parent / "results" / "write_back.json")
