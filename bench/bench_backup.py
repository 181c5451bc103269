"""backup_logs throughput and memory: 10,000 and 100,000 realistic logs exported from the sandbox.

Targets (backup issue): 100,000 logs at 20,000 rows per second or more, with peak RSS under 150 MB,
and a peak that does not grow with the row count (10k vs 100k).

The sandbox runs in its own process (so its copy of the logs is not counted); each export runs
``manage.py backup_logs`` in a child process of its own, which reports its own peak RSS
(``bench.sandbox_process.run_measured``). Each child gets a fresh, migrated SQLite database.
Run: ``.venv/bin/python bench/bench_backup.py``; figures go to ``bench/results/backup.json``.
"""

import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sandbox_process import ROOT, command_env, fresh_database, run_measured, sandbox_process  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "backup.json"

TARGET_ROWS_PER_SECOND = 20_000
TARGET_PEAK_RSS_MB = 150
SIZES = (10_000, 100_000)

# Realistic chatbot turns, spread over the last six days (inside the default 7-day window). A root
# span of Sefaria's chatbot: the conversation so far as input messages, a sourced answer as output,
# session metadata, token metrics, a score, tags. About 2 KB of JSON each.
_QUESTION = "מה ההלכה לגבי נטילת ידיים לפני הסעודה? And where does the Talmud discuss it?"
_ANSWER = (
    "Washing the hands before a meal with bread (netilat yadayim) is a rabbinic obligation discussed in the "
    "Talmud, Chullin 105a-106b, and codified in the Shulchan Arukh, Orach Chayim 158:1. "
    "הרמב\"ם, הלכות ברכות ו:א: \"כל האוכל פת שמברכין עליה המוציא צריך נטילת ידים תחלה\". "
) * 3
REALISTIC_LOG = {
    "input": {
        "messages": [
            {"role": "user", "content": "What is the source for lighting Shabbat candles?"},
            {"role": "assistant", "content": "The Mishnah in Shabbat 2:6-7 and the Talmud, Shabbat 25b."},
            {"role": "user", "content": _QUESTION},
        ]
    },
    "output": _ANSWER,
    "metadata": {
        "session_id": "2f0c9a5e-4f7b-4a8e-9a61-3c2d9f1e7b10", "locale": "he", "client": "web", "turn": 3,
        "model": "claude-sonnet-4-5", "refs": ["Chullin 105a", "Shulchan Arukh, Orach Chayim 158:1"],
    },
    "tags": ["halacha"],
    "scores": {"relevance": 0.86, "groundedness": 1},
    "metrics": {"start": 1764000000.125, "end": 1764000003.482, "prompt_tokens": 1834, "completion_tokens": 412,
                "tokens": 2246},
    "span_attributes": {"name": "chat_turn", "type": "llm"},
}


def _measured_backup(count: int, *args: str) -> tuple[float, float, str]:
    """Run backup_logs over ``count`` sandbox logs on a fresh database; (seconds, peak RSS MB, database)."""
    database = fresh_database()
    with (
        tempfile.TemporaryDirectory(prefix="bench-backup-") as scratch,
        sandbox_process(logs=count, hours_back=144, spread=True, log_fields=REALISTIC_LOG) as url,
    ):
        env = {**command_env(url, database), "BRAINTRUST_OPS_BACKUP_DIR": scratch}
        seconds, rss_mb, _ = run_measured(["backup_logs", *args], env)
    return seconds, rss_mb, database


def _last_run(database: Path) -> dict:
    with sqlite3.connect(database) as connection:
        outcome, counters = connection.execute(
            "SELECT outcome, counters FROM braintrust_ops_commandrun WHERE command = 'backup_logs' ORDER BY id DESC"
        ).fetchone()
    return {"outcome": outcome, **json.loads(counters)}


def export(count: int, *extra_args: str) -> dict:
    seconds, rss_mb, database = _measured_backup(count, *extra_args)
    run = _last_run(database)
    if run["rows"] != count:
        raise RuntimeError(f"expected {count} rows, the backup holds {run['rows']}")
    return {
        "rows": run["rows"],
        "format": run["format"] + (".gz" if run["gzip"] else ""),
        "pages": run["pages"],
        "bytes": run["bytes"],
        "bytes_per_row": round(run["bytes"] / run["rows"]),
        "export_seconds": run["elapsed_seconds"],
        "rows_per_second": round(run["rows"] / run["elapsed_seconds"]),
        "mb_per_second": round(run["bytes"] / 2**20 / run["elapsed_seconds"], 1),
        "process_seconds": round(seconds, 2),
        "peak_rss_mb": round(rss_mb, 1),
    }


def baseline_rss() -> float:
    """Peak RSS of the same command finding no logs: Django, requests and the app imported, no rows."""
    return round(_measured_backup(0)[1], 1)


def main() -> dict:
    baseline = baseline_rss()
    runs = [export(count) for count in SIZES]
    runs.append(export(SIZES[-1], "--gzip"))
    runs.append(export(SIZES[-1], "--format", "jsonl"))
    small, large = runs[0], runs[1]
    result = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "baseline_peak_rss_mb_no_rows": baseline,
        "runs": runs,
        "rss_growth_10k_to_100k_mb": round(large["peak_rss_mb"] - small["peak_rss_mb"], 1),
        "targets": {
            "rows_per_second_min": TARGET_ROWS_PER_SECOND,
            "peak_rss_mb_max": TARGET_PEAK_RSS_MB,
            "rows_per_second_met": large["rows_per_second"] >= TARGET_ROWS_PER_SECOND,
            "peak_rss_met": large["peak_rss_mb"] < TARGET_PEAK_RSS_MB,
        },
    }
    _print_table(result)
    return result


def _print_table(result: dict) -> None:
    header = f"{'rows':>8} {'format':>8} {'MB':>7} {'B/row':>6} {'export s':>9} {'rows/s':>8} {'MB/s':>6} {'peak RSS MB':>12}"
    print(header)
    print("-" * len(header))
    for run in result["runs"]:
        print(
            f"{run['rows']:>8,} {run['format']:>8} {run['bytes'] / 2**20:>7.1f} {run['bytes_per_row']:>6} "
            f"{run['export_seconds']:>9.2f} {run['rows_per_second']:>8,} {run['mb_per_second']:>6} {run['peak_rss_mb']:>12}"
        )
    print(f"baseline peak RSS (same command, no rows): {result['baseline_peak_rss_mb_no_rows']} MB")
    print(f"peak RSS growth 10k -> 100k rows: {result['rss_growth_10k_to_100k_mb']} MB")
    targets = result["targets"]
    print(
        f"targets: >= {targets['rows_per_second_min']:,} rows/s: {'met' if targets['rows_per_second_met'] else 'MISSED'}; "
        f"< {targets['peak_rss_mb_max']} MB: {'met' if targets['peak_rss_met'] else 'MISSED'}"
    )


if __name__ == "__main__":
    started = time.perf_counter()
    figures = main()
    figures["bench_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
