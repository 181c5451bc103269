"""The run's window of logs: which logs it reads from Braintrust, and how it stores them as pending.

``tagging_window``: --since/--until/--hours give a backfill by ``created``; otherwise everything ingested
since the last successful run. ``ingest`` stores the window's rows of this run's shard; the dry run reads
the same rows and stores nothing (``rows_not_stored``).
"""

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from braintrust_ops.btql_query import is_xact_id
from braintrust_ops.clients.braintrust import LogPages
from braintrust_ops.conf import OpsConfig
from braintrust_ops.exceptions import BraintrustOpsError
from braintrust_ops.models import TaggedLog
from braintrust_ops.services.log_sync import (
    MAX_REFUSED_LISTED,
    FetchCounts,
    LogRow,
    LogWindow,
    clean_rows,
    incremental_window,
    logs_store,
    newer_xact,
)
from braintrust_ops.services.tagging.options import TaggingOptions
from braintrust_ops.services.tagging.report import TaggingReport
from braintrust_ops.services.tagging.reviews import reviews_record
from braintrust_ops.services.tagging.state import TaggingRun
from braintrust_ops.shards import Shard


def tagging_window(*, options: TaggingOptions, config: OpsConfig, now: datetime) -> LogWindow:
    """--since/--until/--hours: a backfill by `created`. Otherwise everything ingested since the last
    successful run (``incremental_window``)."""
    if options.since or options.until or options.hours:
        end = options.until or now
        start = options.since or end - timedelta(hours=options.hours or config.tagging_default_hours)
        if start >= end:
            raise BraintrustOpsError(
                f"the window is empty: it starts at {start.isoformat()} and ends at {end.isoformat()}"
            )
        return LogWindow(since=start, until=end)
    if options.retag:
        raise BraintrustOpsError("--retag needs --hours or --since: say which logs to label again.")
    return incremental_window(
        now=now,
        default_hours=config.tagging_default_hours,
        overlap_hours=config.tagging_overlap_hours,
        lookback_days=config.retention_days,
        shard=options.shard,
    )


def ingest(run: TaggingRun) -> None:
    """Store the window's rows of this run's shard as pending; known logs are left as they are."""
    report, taggable = run.report, set(run.allowed)
    for rows in _own_rows(clean_rows(run.pages, run.counts), run.shard, report):
        stored = logs_store(rows, run=run.record)
        report.new_logs += stored.new
        report.refused += stored.unstorable
        _list_refused(report, stored.refused_logs)
        if not run.options.retag:
            report.already_tagged += stored.already_tagged
        reviewed = reviews_record(rows, taggable=taggable, reviewed_tag=run.config.reviewed_tag)
        report.human_corrections += reviewed.corrections
        report.human_confirmations += reviewed.confirmations
    fetch_counts(run)


def rows_not_stored(run: TaggingRun) -> Iterator[LogRow]:
    """The dry run's share of the window: the rows a real run would store as new (the stored ones are
    in the queue already, or tagged, or given up)."""
    report = run.report
    for rows in _own_rows(clean_rows(run.pages, run.counts), run.shard, report):
        statuses = dict(
            TaggedLog.objects.filter(log_id__in=[row.log_id for row in rows]).values_list("log_id", "status")
        )
        for row in rows:
            status = statuses.get(row.log_id)
            if status is None:
                report.new_logs += 1
                yield row
            elif status == TaggedLog.Status.TAGGED and not run.options.retag:
                report.already_tagged += 1


def fetch_counts(run: TaggingRun) -> None:
    """The fetch's counts into the report. Rows without a time are refused rows: they cannot be stored."""
    report, counts, pages = run.report, run.counts, run.pages
    report.fetched, report.without_id = counts.fetched + pages.duplicates, counts.without_id
    report.duplicates = counts.duplicates + pages.duplicates
    report.refused += counts.refused + counts.without_created + pages.unreadable
    _list_refused(report, counts.refused_logs)
    unlisted = report.refused - len(report.refused_logs)  # past the bound, or unreadable (no id to show)
    if unlisted > 0:
        report.refused_logs.append(
            f"and {unlisted} more: their ids are in the log_refused, log_unstorable and log_row_unreadable events"
        )


def newest_xact_seen(counts: FetchCounts, pages: LogPages) -> str | None:
    """The greatest _xact_id of every row read, the unreadable ones included: the next run starts past them."""
    newest = counts.newest_xact_id
    for xact_id in filter(is_xact_id, pages.unreadable_xact_ids):
        newest = newer_xact(newest, xact_id)
    return newest


def _own_rows(pages: Iterable[list[LogRow]], shard: Shard | None, report: TaggingReport) -> Iterator[list[LogRow]]:
    """Each page's rows that belong to this run's shard (all of them without --shard)."""
    if shard is None:
        yield from pages
        return
    for rows in pages:
        own = [row for row in rows if shard.owns(row.log_id)]
        report.other_shards += len(rows) - len(own)
        yield own


def _list_refused(report: TaggingReport, entries: list[str]) -> None:
    report.refused_logs.extend(entries[: max(0, MAX_REFUSED_LISTED - len(report.refused_logs))])
