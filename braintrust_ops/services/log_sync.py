"""Bring a window of Braintrust root spans into the database as TaggedLog rows (status pending)."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import structlog
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from braintrust_ops.models import CommandRun, TaggedLog
from braintrust_ops.shards import Shard

logger = structlog.get_logger(__name__)


@dataclass
class FetchCounts:
    fetched: int = 0
    without_id: int = 0
    without_created: int = 0
    duplicates: int = 0
    new: int = 0
    newest_created: datetime | None = None


@dataclass(frozen=True)
class LogRow:
    """The part of a log row this app keeps."""

    log_id: str
    root_span_id: str
    logged_at: datetime
    input: object
    output: object
    metadata: object


def without_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate (half an emoji: legal in JSON, no UTF-8 form) written as its
    escape, ``\\ud83d``. PostgreSQL's JSON types refuse one, and no request holding one can be sent to
    Claude; done here, on the way in, so nothing downstream meets one."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {without_lone_surrogates(key): without_lone_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_lone_surrogates(item) for item in value]
    return value


def _parse_created(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    moment = parse_datetime(value.replace("Z", "+00:00")) if value else None
    if moment is not None and timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt_timezone.utc)  # Braintrust times are UTC
    return moment


def clean_rows(pages: Iterable[list[dict]], counts: FetchCounts) -> Iterator[list[LogRow]]:
    """Drop rows without an id (counted and logged), collapse repeated ids, parse times."""
    seen: set[str] = set()
    for page in pages:
        cleaned = []
        for row in page:
            counts.fetched += 1
            raw_id = row.get("id") if isinstance(row, dict) else None
            log_id = str(raw_id).strip() if raw_id is not None else ""
            if not log_id:
                counts.without_id += 1
                continue
            if log_id in seen:
                counts.duplicates += 1
                continue
            seen.add(log_id)
            created = _parse_created(row.get("created"))
            if created is None:
                counts.without_created += 1
                logger.warning("log_without_created_skipped", log_id=log_id)
                continue
            if counts.newest_created is None or created > counts.newest_created:
                counts.newest_created = created
            cleaned.append(
                LogRow(
                    log_id=log_id,
                    root_span_id=str(row.get("root_span_id") or ""),
                    logged_at=created,
                    input=without_lone_surrogates(row.get("input")),
                    output=without_lone_surrogates(row.get("output")),
                    metadata=without_lone_surrogates(row.get("metadata")),
                )
            )
        if cleaned:
            yield cleaned
    if counts.without_id:
        logger.warning("logs_without_id_skipped", count=counts.without_id)


@dataclass
class StoreCounts:
    new: int = 0
    already_tagged: int = 0


def logs_store(rows: list[LogRow], *, run: CommandRun | None) -> StoreCounts:
    """Insert the rows not yet known, as pending. Known rows are left alone: their label, attempts
    and history stay as they are."""
    statuses = dict(
        TaggedLog.objects.filter(log_id__in=[row.log_id for row in rows]).values_list("log_id", "status")
    )
    new = [
        TaggedLog(
            log_id=row.log_id,
            root_span_id=row.root_span_id,
            logged_at=row.logged_at,
            input=row.input,
            output=row.output,
            metadata=row.metadata,
            last_run=run,
        )
        for row in rows
        if row.log_id not in statuses
    ]
    # ignore_conflicts: a row another process stored between the query and this insert is fine.
    TaggedLog.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
    return StoreCounts(
        new=len(new), already_tagged=sum(status == TaggedLog.Status.TAGGED for status in statuses.values())
    )


def last_high_water_mark(shard: Shard | None = None) -> datetime | None:
    """The newest log a successful tag_logs run saw. A shard counts only its own runs and unsharded
    ones (which covered every shard): one shard's success says nothing of another shard's logs."""
    runs = CommandRun.objects.filter(
        command="tag_logs", outcome=CommandRun.Outcome.SUCCEEDED, high_water_mark__isnull=False
    )
    unsharded = ~Q(options__has_key="shard")
    runs = runs.filter(unsharded if shard is None else unsharded | Q(options__shard=str(shard)))
    return runs.order_by("-high_water_mark").values_list("high_water_mark", flat=True).first()


def default_window_start(
    *, now: datetime, default_hours: int, overlap_hours: int, shard: Shard | None = None
) -> datetime:
    """Where the next tag_logs run starts: the newest log the last successful run (of this shard) saw,
    minus an overlap for logs Braintrust ingests late; 24 hours back when there is no such run."""
    last = last_high_water_mark(shard)
    if last is None:
        return now - timedelta(hours=default_hours)
    return min(last - timedelta(hours=overlap_hours), now - timedelta(hours=overlap_hours))
