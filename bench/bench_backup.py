"""backup_logs throughput and memory: 10,000 and 100,000 realistic logs exported from the sandbox, and
memory with rows of about 40 KB.

Targets (backup issue): 100,000 logs at 20,000 rows per second or more, with peak RSS under 150 MB,
and a peak that does not grow with the row count (10k vs 100k). Issue "Braintrust as it really
behaves", item 8: the peak stays bounded whatever the row size, under the backup CronJob's 384 MiB
limit and ideally near the 2 KB figure: 2,000 and 5,000 rows of about 40 KB (as BTQL sends them,
UTF-8) against 10,000 and 100,000 of about 2 KB (5,000 x 40 KB is the bytes of 100,000 x 2 KB).

The sandbox runs in its own process (so its copy of the logs is not counted); each export runs
``manage.py backup_logs`` in a child process of its own, which reports its own peak RSS
(``bench.sandbox_process.run_measured``). Each child gets a fresh, migrated SQLite database.
Run: ``.venv/bin/python bench/bench_backup.py``; figures go to ``bench/results/backup.json``.
"""

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chat_logs import REALISTIC_LOG, long_chat_log  # noqa: E402
from bench.sandbox_process import (  # noqa: E402
    ROOT,
    command_env,
    fresh_database,
    last_run,
    run_and_write,
    run_measured,
    sandbox_process,
)
from braintrust_ops_sandbox.state import SandboxState, encode_json  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "backup.json"

TARGET_ROWS_PER_SECOND = 20_000
TARGET_PEAK_RSS_MB = 150
SIZES = (10_000, 100_000)

# Realistic chatbot turns, spread over the last six days (inside the default 7-day window): about 2 KB
# of JSON each (bench/chat_logs.py). For memory, turns of about 40 KB too: answers quoting long
# sources, as Sefaria's chatbot gives them; the BTQL page size follows the bytes, so the peak should not
# follow the row size.
LARGE_ROW_BYTES = 40_000
# 2,000 such rows are 4 times the bytes of 10,000 rows of 2 KB; 5,000 are the bytes of 100,000.
LARGE_ROW_COUNTS = (2_000, 5_000)
# The weekly backup CronJob's memory limit (deploy/weekly-backup.yaml): 384 MiB; RSS here is in MiB too.
CRONJOB_LIMIT_MIB = 384


def large_log() -> dict:
    """A turn whose row, as BTQL sends it (UTF-8 JSON), is about LARGE_ROW_BYTES."""
    fields = {**REALISTIC_LOG, **long_chat_log(LARGE_ROW_BYTES, ensure_ascii=False)}
    # What the row adds around the sized fields (ids, times, scores, metrics) is the same whatever their size.
    overhead = row_bytes(fields) - LARGE_ROW_BYTES
    return {**REALISTIC_LOG, **long_chat_log(LARGE_ROW_BYTES - overhead, ensure_ascii=False)}


def row_bytes(fields: dict) -> int:
    """Bytes of one log row with these fields in a BTQL page: the sandbox's own row and encoding."""
    state = SandboxState()
    state.add_log(**fields)
    return len(encode_json(state.logs()[0]))


def _measured_backup(
    count: int, *args: str, log_fields: dict = REALISTIC_LOG, settings: dict | None = None
) -> tuple[float, float, str]:
    """Run backup_logs over ``count`` sandbox logs on a fresh database; (seconds, peak RSS MB, database)."""
    database = fresh_database()
    with (
        tempfile.TemporaryDirectory(prefix="bench-backup-") as scratch,
        sandbox_process(logs=count, hours_back=144, spread=True, log_fields=log_fields) as url,
    ):
        env = {**command_env(url, database), "BRAINTRUST_OPS_BACKUP_DIR": scratch, **(settings or {})}
        seconds, rss_mb, _ = run_measured(["backup_logs", *args], env)
    return seconds, rss_mb, database


def export(count: int, *extra_args: str, log_fields: dict = REALISTIC_LOG, settings: dict | None = None) -> dict:
    seconds, rss_mb, database = _measured_backup(count, *extra_args, log_fields=log_fields, settings=settings)
    run = last_run(database, "backup_logs")
    if run["rows"] != count:
        raise RuntimeError(f"expected {count} rows, the backup holds {run['rows']}")
    return {
        "rows": run["rows"],
        "btql_bytes_per_row": row_bytes(log_fields),
        "format": run["format"] + (".gz" if run["gzip"] else ""),
        "pages": run["pages"],
        "bytes": run["bytes"],
        "bytes_per_row": round(run["bytes"] / run["rows"]),
        "export_seconds": run["elapsed_seconds"],
        "rows_per_second": round(run["rows"] / run["elapsed_seconds"]),
        "mb_per_second": round(run["bytes"] / 2**20 / run["elapsed_seconds"], 1),
        "process_seconds": round(seconds, 2),
        "peak_rss_mb": round(rss_mb, 1),
        **({"settings": settings} if settings else {}),
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
    large_fields = large_log()
    large_rows = [export(count, log_fields=large_fields) for count in LARGE_ROW_COUNTS]
    runs.extend(large_rows)
    # Not a target: what the peak is made of. A page of 2 KB rows stops at 1000 rows, about 2 MiB; a page
    # of 40 KB rows grows to the 8 MiB byte target. The same export with 2 MiB pages tells the two apart.
    runs.append(
        export(LARGE_ROW_COUNTS[-1], log_fields=large_fields, settings={"BRAINTRUST_OPS_BTQL_PAGE_BYTES": str(2 * 2**20)})
    )
    largest_peak = max(run["peak_rss_mb"] for run in large_rows)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "baseline_peak_rss_mb_no_rows": baseline,
        "runs": runs,
        "rss_growth_10k_to_100k_mb": round(large["peak_rss_mb"] - small["peak_rss_mb"], 1),
        "rss_40kb_rows_minus_2kb_rows_mb": round(largest_peak - small["peak_rss_mb"], 1),
        "targets": {
            "rows_per_second_min": TARGET_ROWS_PER_SECOND,
            "peak_rss_mb_max": TARGET_PEAK_RSS_MB,
            "rows_per_second_met": large["rows_per_second"] >= TARGET_ROWS_PER_SECOND,
            "peak_rss_met": large["peak_rss_mb"] < TARGET_PEAK_RSS_MB,
            "cronjob_limit_mib": CRONJOB_LIMIT_MIB,
            "peak_rss_40kb_rows_under_cronjob_limit": largest_peak < CRONJOB_LIMIT_MIB,
        },
    }
    _print_table(result)
    return result


def _print_table(result: dict) -> None:
    header = (
        f"{'rows':>8} {'BTQL B/row':>10} {'format':>8} {'MB':>7} {'B/row':>6} {'pages':>5} {'export s':>9} "
        f"{'rows/s':>8} {'MB/s':>6} {'peak RSS MB':>12}"
    )
    print(header)
    print("-" * len(header))
    for run in result["runs"]:
        print(
            f"{run['rows']:>8,} {run['btql_bytes_per_row']:>10,} {run['format']:>8} {run['bytes'] / 2**20:>7.1f} "
            f"{run['bytes_per_row']:>6} {run['pages']:>5} {run['export_seconds']:>9.2f} {run['rows_per_second']:>8,} {run['mb_per_second']:>6} {run['peak_rss_mb']:>12}"
            + (f"  {run['settings']}" if "settings" in run else "")
        )
    print(f"baseline peak RSS (same command, no rows): {result['baseline_peak_rss_mb_no_rows']} MB")
    print(f"peak RSS growth 10k -> 100k rows: {result['rss_growth_10k_to_100k_mb']} MB")
    print(f"peak RSS, 40 KB rows minus 10k rows of 2 KB: {result['rss_40kb_rows_minus_2kb_rows_mb']} MB")
    targets = result["targets"]
    print(
        f"targets: >= {targets['rows_per_second_min']:,} rows/s: {'met' if targets['rows_per_second_met'] else 'MISSED'}; "
        f"< {targets['peak_rss_mb_max']} MB: {'met' if targets['peak_rss_met'] else 'MISSED'}; "
        f"40 KB rows < {targets['cronjob_limit_mib']} MiB (the CronJob's limit): "
        f"{'met' if targets['peak_rss_40kb_rows_under_cronjob_limit'] else 'MISSED'}"
    )


if __name__ == "__main__":
    run_and_write(main, RESULTS)
