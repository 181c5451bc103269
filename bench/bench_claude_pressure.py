"""tag_logs under pressure from Claude: throughput and 429s at Anthropic's rate limit, and an outage's wall time.

Targets (issue "Claude under pressure"): at the provider's limit, at least 0.85x the limit's throughput
with at most 5% of requests refused; an outage run stops and exits non-zero within about a minute.

The limit runs on the sandbox's scaled time (a minute of 120 requests passes in 2 s, so 120 requests a
"minute" are 60 a second). Its token bucket starts full, as Anthropic's does, so the first 120 requests go
at once; the floor is the time the other requests need at the refill rate.
"""

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sandbox_process import ROOT, command_env, fresh_database, run_measured, sandbox_process  # noqa: E402

TAGS = ["halacha", "translation", "sources", "hebrew"]
PER_MINUTE, TIME_SCALE, LOGS = 120, 30, 600
RUNS = 3


def _env(url: str, logs: int, **extra) -> dict:
    env = command_env(url, fresh_database())
    env["BRAINTRUST_OPS_TAGGING_MAX_LOGS_PER_RUN"] = str(logs)
    env["BRAINTRUST_OPS_TAGGING_MAX_INPUT_TOKENS_PER_RUN"] = str(logs * 10_000)
    env.update(extra)
    return env


def at_the_rate_limit() -> dict:
    per_second = PER_MINUTE / 60 * TIME_SCALE
    floor = (LOGS - PER_MINUTE) / per_second
    runs = []
    for _ in range(RUNS):
        with sandbox_process(logs=LOGS, tags=TAGS) as url:
            requests.put(
                f"{url}/_sandbox/claude_limits",
                json={"requests_per_minute": PER_MINUTE, "time_scale": TIME_SCALE},
                timeout=5,
            ).raise_for_status()
            seconds, _, stdout = run_measured(["tag_logs", "--concurrency", "8"], _env(url, LOGS))
            counts = requests.get(f"{url}/_sandbox/claude_limits", timeout=5).json()
        if f"Sent to Claude: {LOGS};" not in stdout:
            raise RuntimeError(stdout)
        refused, accepted = counts["refused"], counts["accepted"]
        runs.append({"seconds": seconds, "refused": refused, "share_429": refused / (accepted + refused)})
    median = statistics.median(run["seconds"] for run in runs)
    return {
        "logs": LOGS,
        "limit_per_minute": PER_MINUTE,
        "time_scale": TIME_SCALE,
        "limit_per_second_scaled": per_second,
        "floor_seconds": round(floor, 2),
        "median_seconds": round(median, 2),
        "throughput_vs_limit": round(floor / median, 2),
        "share_429_worst": round(max(run["share_429"] for run in runs), 4),
        "runs": runs,
    }


def outage(kind: str) -> dict:
    """Claude down for the whole run, the default retries (4) and threshold (10): how long until it stops."""
    with sandbox_process(logs=150, tags=TAGS) as url:
        requests.put(f"{url}/_sandbox/claude_outage", json={"kind": kind}, timeout=5).raise_for_status()
        started = time.perf_counter()
        finished = subprocess.run(
            [sys.executable, "manage.py", "tag_logs", "--concurrency", "8"],
            cwd=ROOT,
            env=_env(url, 150),
            capture_output=True,
            text=True,
            timeout=300,
        )
        wall = time.perf_counter() - started
        if finished.returncode == 0:
            raise RuntimeError("an outage run exited 0")
        received = requests.get(f"{url}/_sandbox/claude_outage", timeout=5).json()["requests"]
    return {
        "kind": kind,
        "wall_seconds": round(wall, 1),
        "exit_code": finished.returncode,
        "claude_requests": received,
        "last_line": finished.stderr.strip().splitlines()[-1],
    }


def main() -> dict:
    result = {
        "at_the_rate_limit": at_the_rate_limit(),
        "outage_overloaded": outage("overloaded"),
        "outage_unreachable": outage("unreachable"),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    output = Path(__file__).resolve().parent / "results" / "claude_pressure.json"
    output.write_text(json.dumps(main(), indent=2) + "\n")
