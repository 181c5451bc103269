"""What 1,000 logs cost to tag, interactively and in Message Batches: tokens times price.

Both modes send the same requests (one forced tool call per log, ``clients.claude.tool_params``) to the
sandbox, which counts tokens the same way for both; the run records its tokens and its dollar estimate
(``claude-haiku-4-5`` list prices, batch results at half price: BRAINTRUST_OPS_CLAUDE_BATCH_DISCOUNT).
The labels must agree too: the benchmark fails if the two runs label any log differently.
"""

import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sandbox_process import command_env, fresh_database, last_run, run_and_write, run_measured, sandbox_process  # noqa: E402

TAGS = ["halacha", "translation", "sources", "hebrew"]
LOGS = 1000
FIELDS = {
    "input": {"messages": [{"role": "user", "content": "Where does the Talmud discuss lighting Shabbat candles? " * 3}]},
    "output": "The Talmud discusses it in Shabbat 21b-23b, and Rashi explains the source. " * 12,
}


def _labels(database: str) -> dict[str, tuple[str, ...]]:
    path = database.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT l.log_id, t.name FROM braintrust_ops_taggedlog l "
            "LEFT JOIN braintrust_ops_logtag t ON t.tagged_log_id = l.id ORDER BY l.log_id, t.name"
        ).fetchall()
    labels: dict[str, list[str]] = {}
    for log_id, name in rows:
        labels.setdefault(log_id, []).extend([name] if name else [])
    return {log_id: tuple(names) for log_id, names in labels.items()}


def _mode(url: str, args: list[str]) -> tuple[dict, dict]:
    database = fresh_database()
    env = command_env(url, database)
    env["BRAINTRUST_OPS_TAGGING_MAX_LOGS_PER_RUN"] = str(LOGS)
    env["BRAINTRUST_OPS_CLAUDE_BATCH_POLL_SECONDS"] = "0.2"
    seconds, _, _ = run_measured(["tag_logs", *args], env)
    run = last_run(database, "tag_logs")
    if run["outcome"] != "succeeded" or run["tagged"] + run["no_tag_applied"] != LOGS:
        raise RuntimeError(f"tag_logs {args} did not label every log: {run}")
    figures = {
        "input_tokens": run["input_tokens"],
        "output_tokens": run["output_tokens"],
        "cost_usd": float(run["estimated_cost_usd"]),
        "seconds": round(seconds, 2),
    }
    return figures, _labels(database)


def main() -> dict:
    with sandbox_process(logs=LOGS, tags=TAGS, log_fields=FIELDS) as url:
        interactive, interactive_labels = _mode(url, [])
        batch, batch_labels = _mode(url, ["--batch", "--wait", "5"])
    if interactive_labels != batch_labels:
        raise RuntimeError("the batch run labelled some logs differently from the interactive run")
    return {
        "logs": LOGS,
        "interactive": interactive,
        "batch": batch,
        "batch_to_interactive_cost": round(batch["cost_usd"] / interactive["cost_usd"], 3),
        "cost_per_1000_logs_usd": {"interactive": interactive["cost_usd"], "batch": batch["cost_usd"]},
        "same_labels": True,
    }


if __name__ == "__main__":
    run_and_write(main, Path(__file__).resolve().parent / "results" / "batch_cost.json")
