"""tag_logs throughput and memory against the sandbox with a 200 ms Claude latency.

Targets (issue 3): 1,000 logs at concurrency 16 within 1.25x of the ideal 1000 x 0.2 s / 16 = 12.5 s;
peak memory under 200 MB for 10,000 logs; the speed-up over concurrency 1.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sandbox_process import command_env, fresh_database, run_measured, sandbox_process  # noqa: E402

LATENCY = 0.2
TAGS = ["halacha", "translation", "sources", "hebrew"]


def tag_run(logs: int, concurrency: int, latency: float) -> dict:
    database = fresh_database()
    with sandbox_process(logs=logs, tags=TAGS, claude_latency=latency) as url:
        env = command_env(url, database)
        env["BRAINTRUST_OPS_TAGGING_MAX_LOGS_PER_RUN"] = str(logs)
        env["BRAINTRUST_OPS_TAGGING_MAX_INPUT_TOKENS_PER_RUN"] = str(logs * 10_000)
        seconds, rss, stdout = run_measured(["tag_logs", "--concurrency", str(concurrency)], env)
    if f"Sent to Claude: {logs};" not in stdout:
        raise RuntimeError(stdout)
    return {"logs": logs, "concurrency": concurrency, "latency_s": latency, "seconds": round(seconds, 2), "peak_rss_mb": rss}


def main() -> dict:
    fast = tag_run(1000, 16, LATENCY)
    ideal = 1000 * LATENCY / 16
    serial = tag_run(50, 1, LATENCY)
    serial_per_log = serial["seconds"] / serial["logs"]
    memory = tag_run(10_000, 16, 0.01)
    result = {
        "concurrency_16": {**fast, "ideal_seconds": ideal, "ratio_to_ideal": round(fast["seconds"] / ideal, 2)},
        "concurrency_1": {**serial, "seconds_per_log": round(serial_per_log, 3)},
        "speed_up_16_vs_1": round(serial_per_log * 1000 / fast["seconds"], 1),
        "memory_10k_logs": memory,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    output = Path(__file__).resolve().parent / "results" / "tagging.json"
    output.write_text(json.dumps(main(), indent=2) + "\n")
