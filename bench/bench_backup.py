"""backup_logs throughput and memory: 10,000 and 100,000 realistic logs exported from the sandbox.

Targets (backup issue): 100,000 logs at 20,000 rows per second or more, with peak RSS under 150 MB,
and a peak that does not grow with the row count (10k vs 100k).

The sandbox runs in its own process (so its copy of the logs is not counted); each export runs
``manage.py backup_logs`` in a child process of its own, whose peak RSS is read from
``getrusage(RUSAGE_CHILDREN)`` after it exits. Each child gets a fresh, migrated SQLite database.
Run: ``.venv/bin/python bench/bench_backup.py``; figures go to ``bench/results/backup.json``.
"""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "backup.json"
sys.path.insert(0, str(ROOT))

TARGET_ROWS_PER_SECOND = 20_000
TARGET_PEAK_RSS_MB = 150
SIZES = (10_000, 100_000)

# The sandbox process: realistic chatbot turns, spread over the last six days (inside the default
# 7-day window). A root span of Sefaria's chatbot: the conversation so far as input messages, a
# sourced answer as output, session metadata, token metrics, a score, tags. About 2 KB of JSON each.
_SERVER = r'''
import json, signal, sys, threading
from datetime import datetime, timedelta, timezone
from braintrust_ops.sandbox import Sandbox

count, port = int(sys.argv[1]), int(sys.argv[2])
sandbox = Sandbox(seed=False, port=port)
start = datetime.now(timezone.utc) - timedelta(days=6)
step = timedelta(days=6) / max(count, 1)
question = "מה ההלכה לגבי נטילת ידיים לפני הסעודה? And where does the Talmud discuss it?"
answer = (
    "Washing the hands before a meal with bread (netilat yadayim) is a rabbinic obligation discussed in the "
    "Talmud, Chullin 105a-106b, and codified in the Shulchan Arukh, Orach Chayim 158:1. "
    "הרמב\"ם, הלכות ברכות ו:א: \"כל האוכל פת שמברכין עליה המוציא צריך נטילת ידים תחלה\". "
) * 3
sandbox.state.add_logs(
    count,
    created=lambda i: start + step * i,
    input={
        "messages": [
            {"role": "user", "content": "What is the source for lighting Shabbat candles?"},
            {"role": "assistant", "content": "The Mishnah in Shabbat 2:6-7 and the Talmud, Shabbat 25b."},
            {"role": "user", "content": question},
        ]
    },
    output=answer,
    metadata={"session_id": "2f0c9a5e-4f7b-4a8e-9a61-3c2d9f1e7b10", "locale": "he", "client": "web", "turn": 3,
              "model": "claude-sonnet-4-5", "refs": ["Chullin 105a", "Shulchan Arukh, Orach Chayim 158:1"]},
    tags=["halacha"],
    scores={"relevance": 0.86, "groundedness": 1},
    metrics={"start": 1764000000.125, "end": 1764000003.482, "prompt_tokens": 1834, "completion_tokens": 412,
             "tokens": 2246},
    span_attributes={"name": "chat_turn", "type": "llm"},
)
sandbox.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
sandbox.stop()
'''

# The measured child: the command itself, as the CronJob runs it, plus its own wall time.
_EXPORT = r'''
import runpy, sys, time
sys.argv = ["manage.py", *sys.argv[1:]]
started = time.perf_counter()
try:
    runpy.run_path("manage.py", run_name="__main__")
finally:
    print(f"WALL {time.perf_counter() - started:.3f}", file=sys.stderr)
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _migrated_database(directory: Path) -> Path:
    database = directory / "bench.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "sefaria.settings", "DATABASE_URL": f"sqlite:///{database}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    return database


def _command_env(url: str, database: Path, backup_dir: Path) -> dict:
    from braintrust_ops.sandbox import BRAINTRUST_KEY, PROJECT_ID

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRAINTRUST", "ANTHROPIC"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "sefaria.settings",
            "DATABASE_URL": f"sqlite:///{database}",
            "BRAINTRUST_API_KEY": BRAINTRUST_KEY,
            "BRAINTRUST_PROJECT_ID": PROJECT_ID,
            "BRAINTRUST_API_URL": url,
            "BRAINTRUST_OPS_BACKUP_DIR": str(backup_dir),
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def _start_sandbox(count: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(count), str(port)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError("the sandbox did not start")
    return process, f"http://127.0.0.1:{port}"


def _measure_child(args: list[str], env: dict) -> tuple[subprocess.CompletedProcess, float]:
    """Run one export in a child process; return it and its peak RSS in MB (ru_maxrss is in KiB on Linux).

    RUSAGE_CHILDREN's ru_maxrss is the largest peak among waited-for children, so the export runs in
    a fresh intermediate process whose only child is the export: what it reports is that export's peak.
    """
    probe = (
        "import resource, subprocess, sys, json;"
        "result = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True);"
        "sys.stdout.write(json.dumps({'code': result.returncode, 'out': result.stdout, 'err': result.stderr,"
        " 'rss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"
    )
    command = [sys.executable, "-c", _EXPORT, *args]
    probe_run = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(command)], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    report = json.loads(probe_run.stdout)
    completed = subprocess.CompletedProcess(command, report["code"], report["out"], report["err"])
    return completed, report["rss_kib"] / 1024


def _last_run(database: Path) -> dict:
    with sqlite3.connect(database) as connection:
        outcome, counters = connection.execute(
            "SELECT outcome, counters FROM braintrust_ops_commandrun WHERE command = 'backup_logs' ORDER BY id DESC"
        ).fetchone()
    return {"outcome": outcome, **json.loads(counters)}


def export(count: int, *extra_args: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as scratch:
        scratch_path = Path(scratch)
        database = _migrated_database(scratch_path)
        sandbox, url = _start_sandbox(count)
        try:
            env = _command_env(url, database, scratch_path)
            completed, rss_mb = _measure_child(["backup_logs", *extra_args], env)
        finally:
            sandbox.send_signal(signal.SIGTERM)
            sandbox.wait(30)
        if completed.returncode != 0:
            raise RuntimeError(f"backup_logs failed:\n{completed.stdout}\n{completed.stderr}")
        run = _last_run(database)
        wall = float([line for line in completed.stderr.splitlines() if line.startswith("WALL ")][-1].split()[1])
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
        "process_seconds": round(wall, 2),
        "peak_rss_mb": round(rss_mb, 1),
    }


def baseline_rss() -> float:
    """Peak RSS of the same command finding no logs: Django, requests and the app imported, no rows."""
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as scratch:
        database = _migrated_database(Path(scratch))
        sandbox, url = _start_sandbox(0)
        try:
            completed, rss_mb = _measure_child(["backup_logs"], _command_env(url, database, Path(scratch)))
        finally:
            sandbox.send_signal(signal.SIGTERM)
            sandbox.wait(30)
        if completed.returncode != 0:
            raise RuntimeError(completed.stderr)
    return round(rss_mb, 1)


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
