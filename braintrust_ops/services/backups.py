"""backup_logs: a window of the project's logs, streamed page by page into one backup file.

Each BTQL page is written as it arrives and then dropped (the next one downloads meanwhile), so memory
is bounded by the page size, whatever the row count; the file appears at its final path only when complete
(see ``braintrust_ops.backup_files`` for the columns, the cell rules and the atomic write). No logs in
the window: no file at all.
"""

import itertools
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from django.utils import timezone

from braintrust_ops.backup_files import BackupFile, backup_target_check, default_backup_name
from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.conf import OpsConfig
from braintrust_ops.exceptions import BraintrustOpsError
from braintrust_ops.models import CommandRun
from braintrust_ops.prefetch import prefetched

logger = structlog.get_logger(__name__)


@dataclass
class BackupReport:
    window_start: datetime
    window_end: datetime
    format: str
    gzip: bool
    root_only: bool
    #: the file written; empty when the window held no logs and no file was written
    path: str = ""
    rows: int = 0
    bytes: int = 0
    pages: int = 0
    #: rows a later page repeated (the same id), left out
    duplicates: int = 0
    #: rows nested too deep for the JSON parser, left out (each logged as log_row_unreadable)
    unreadable: int = 0
    #: cells longer than Excel's 32,767-character limit (kept whole in the file)
    oversized_cells: int = 0
    elapsed_seconds: float = 0.0

    @property
    def written(self) -> bool:
        return bool(self.path)

    def as_counters(self) -> dict:
        counters = asdict(self)
        counters["window_start"] = self.window_start.isoformat()
        counters["window_end"] = self.window_end.isoformat()
        return counters

    def problem(self, config: OpsConfig) -> str:
        """A backup that returned did its work: every failure raises, and no file is left behind."""
        return ""


def backup_window(
    *, since: datetime | None, until: datetime | None, days: int | None, config: OpsConfig, now: datetime
) -> tuple[datetime, datetime]:
    """[since, until): ``until`` defaults to now, ``since`` to ``days`` (or the configured backup_days) before it."""
    end = until or now
    start = since or end - timedelta(days=days or config.backup_days)
    if start >= end:
        raise BraintrustOpsError(
            f"The backup window is empty: --since ({start.isoformat()}) must be before --until ({end.isoformat()})."
        )
    return start, end


def backup_path(*, output: str | None, config: OpsConfig, window_end: datetime, fmt: str, gzip: bool) -> Path:
    """``--output`` as given, else ``<backup_dir>/logs_backup_<window end's UTC date>.<fmt>[.gz]``."""
    if output:
        return Path(output).expanduser()
    day = window_end.astimezone(UTC).date()
    return Path(config.backup_dir) / default_backup_name(day, fmt=fmt, gzip=gzip)


def logs_backup(
    *,
    config: OpsConfig,
    braintrust: BraintrustClient,
    since: datetime | None = None,
    until: datetime | None = None,
    days: int | None = None,
    output: str | None = None,
    fmt: str = "csv",
    gzip: bool = False,
    root_only: bool = False,
    run: CommandRun | None = None,
) -> BackupReport:
    """Export the window's logs to one file; ``run`` (when given) gets the window.

    Any failure (Braintrust after its retries, the disk) raises and leaves no file behind; a file
    already at the path from an earlier run stays as it was.
    """
    started = time.monotonic()
    window = backup_window(since=since, until=until, days=days, config=config, now=timezone.now())
    report = BackupReport(window_start=window[0], window_end=window[1], format=fmt, gzip=gzip, root_only=root_only)
    path = backup_path(output=output, config=config, window_end=window[1], fmt=fmt, gzip=gzip)
    backup_target_check(path)  # a device, FIFO, link or directory is refused before any request, logs or not
    if run is not None:
        run.window_start, run.window_end = window
    project_id = config.project_id
    braintrust.get_project(project_id)  # a mistyped id fails here, clearly, before any file

    # The next page downloads while this one is written.
    log_pages = braintrust.log_pages(project_id=project_id, since=window[0], until=window[1], root_only=root_only)
    pages = prefetched(iter(log_pages))
    # The first page decides whether there is a file at all: no logs, no file (not even a header).
    first_page = next(pages, None)
    if first_page is not None:
        # Only the chain refers to the first page, so it is freed once written, like every other page.
        all_pages = itertools.chain([first_page], pages)
        del first_page
        with BackupFile(path, fmt=fmt, gzip=gzip) as backup:
            if backup.reclaimed:
                logger.info(
                    "logs_backup_stale_temporaries_removed", count=len(backup.reclaimed), directory=str(path.parent)
                )
            for page in all_pages:
                report.rows += backup.write_rows(page)
                report.pages += 1
                logger.debug("logs_backup_page", page=report.pages, rows=report.rows)
                del page  # not held while the next page downloads
            backup.commit()
        report.duplicates = log_pages.duplicates
        report.unreadable = log_pages.unreadable
        report.path = str(path.resolve())
        report.bytes = backup.bytes
        report.oversized_cells = backup.oversized_cells

    report.elapsed_seconds = round(time.monotonic() - started, 3)
    if report.written:
        logger.info("logs_backed_up", rows=report.rows, bytes=report.bytes, pages=report.pages, path=report.path)
    else:
        logger.info("logs_backup_empty", window_start=window[0].isoformat(), window_end=window[1].isoformat())
    return report
