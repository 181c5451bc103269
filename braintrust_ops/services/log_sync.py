"""Bring Braintrust root spans into the database as TaggedLog rows (status pending), and say where the
next run starts: after the ``_xact_id`` (ingestion order) watermarks of the successful runs before it
(``watermarks``)."""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from braintrust_ops.btql_query import is_xact_id
from braintrust_ops.models import CommandRun, TaggedLog
from braintrust_ops.seen_ids import SeenIds
from braintrust_ops.services.watermarks import newer_xact, run_start
from braintrust_ops.shards import Shard
from braintrust_ops.storable import (
    READABLE_ID_LENGTH,
    Unstorable,
    escape_text,
    readable_id,
    storable_id,
    storable_json,
)

logger = structlog.get_logger(__name__)

#: How many refused logs a run record lists by id (each has its log event all the same).
MAX_REFUSED_LISTED = 50


@dataclass
class FetchCounts:
    fetched: int = 0
    without_id: int = 0
    without_created: int = 0
    duplicates: int = 0
    #: rows that cannot be stored as they are (an over-long id, JSON nested too deep): reported, skipped
    refused: int = 0
    #: "id: why" of the refused rows and of those without a time, the first MAX_REFUSED_LISTED
    refused_logs: list[str] = field(default_factory=list)
    newest_created: datetime | None = None
    #: the greatest _xact_id among the rows seen, stored or not
    newest_xact_id: str | None = None


@dataclass(frozen=True)
class LogRow:
    """The part of a log row this app keeps, made storable (``braintrust_ops.storable``)."""

    log_id: str
    root_span_id: str
    logged_at: datetime
    input: object
    output: object
    metadata: object
    #: the row's tags in Braintrust (its string ones), which reviews compare with what this app knew
    tags: tuple[str, ...] = ()


def _parse_created(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    moment = parse_datetime(value.replace("Z", "+00:00")) if value else None
    if moment is not None and timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)  # Braintrust times are UTC
    return moment


def clean_rows(pages: Iterable[Sequence[object]], counts: FetchCounts) -> Iterator[list[LogRow]]:
    """Each page's rows, storable: rows without an id or a time are skipped (counted and logged), repeated
    ids collapse, and a row that cannot be stored (``storable``) is refused on its own, with its reason.
    Rows are as the API sent them (BTQL's reply is checked for a data list, not its items): a row that is
    not a JSON object counts as one without an id."""
    seen = SeenIds()
    for page in pages:
        cleaned = []
        for row in page:
            counts.fetched += 1
            if not isinstance(row, dict):
                counts.without_id += 1
                continue
            if is_xact_id(row.get("_xact_id")):  # anything else could never be asked for after
                counts.newest_xact_id = newer_xact(counts.newest_xact_id, row["_xact_id"])
            raw_id = row.get("id")
            if raw_id is None or raw_id == "":
                counts.without_id += 1
                continue
            # Ids are compared exactly as sent: " abc" and "abc" are two logs. One that is not a string is
            # refused below (storable_id), so it is never merged with the string it would print as.
            if isinstance(raw_id, str) and not seen.add(raw_id):
                counts.duplicates += 1
                continue
            created = _parse_created(row.get("created"))
            if created is None:
                counts.without_created += 1
                logger.warning("log_without_created_skipped", log_id=_event_id(raw_id))
                list_refused(counts.refused_logs, raw_id, "it has no readable created time")
                continue
            if counts.newest_created is None or created > counts.newest_created:
                counts.newest_created = created
            try:
                cleaned.append(_storable_row(row, created=created))
            except Unstorable as exc:
                counts.refused += 1
                logger.warning("log_refused", log_id=_event_id(raw_id), reason=str(exc))
                list_refused(counts.refused_logs, raw_id, str(exc))
        if cleaned:
            yield cleaned
    if counts.without_id:
        logger.warning("logs_without_id_skipped", count=counts.without_id)


def list_refused(listed: list[str], raw_id: object, reason: str) -> None:
    """Keep "id: why" for the run record, so the admin shows which logs were refused; bounded, since a
    night of bad rows must not make the record huge (every one is in its log event)."""
    if len(listed) < MAX_REFUSED_LISTED:
        listed.append(f"{readable_id(raw_id)}: {reason}")


def _event_id(raw_id: object) -> str:
    """A log id as a log event shows it: a string id bounded, anything else as its JSON text."""
    return raw_id[:READABLE_ID_LENGTH] if isinstance(raw_id, str) else readable_id(raw_id)


def _storable_row(row: dict, *, created: datetime) -> LogRow:
    try:
        return LogRow(
            log_id=storable_id(row["id"], field="id"),
            root_span_id=storable_id(row.get("root_span_id"), field="root_span_id"),
            logged_at=created,
            input=storable_json(row.get("input")),
            output=storable_json(row.get("output")),
            metadata=storable_json(row.get("metadata")),
            tags=_string_tags(row.get("tags")),
        )
    except RecursionError:  # a structure deeper than the interpreter's stack, before MAX_JSON_DEPTH was reached
        raise Unstorable("nested too deep to store") from None


def _string_tags(value: object) -> tuple[str, ...]:
    """A row's tags as Braintrust holds them (a list of strings, or null); anything else is no tag."""
    return tuple(tag for tag in value if isinstance(tag, str)) if isinstance(value, list) else ()


@dataclass
class StoreCounts:
    new: int = 0
    already_tagged: int = 0
    #: rows the database still refused, one by one: reported, the rest of the page stored
    unstorable: int = 0
    #: "id: why" of those
    refused_logs: list[str] = field(default_factory=list)


def logs_store(rows: list[LogRow], *, run: CommandRun | None) -> StoreCounts:
    """Insert the rows not yet known, as pending. Known rows are left alone: their label, attempts
    and history stay as they are (a log changed in Braintrust comes back with a new _xact_id)."""
    statuses = dict(TaggedLog.objects.filter(log_id__in=[row.log_id for row in rows]).values_list("log_id", "status"))
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
    counts = StoreCounts(
        new=len(new), already_tagged=sum(status == TaggedLog.Status.TAGGED for status in statuses.values())
    )
    try:
        with transaction.atomic():
            # ignore_conflicts: a row another process stored between the query and this insert is fine.
            TaggedLog.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
    except DatabaseError:
        # One row the database refuses must not cost the rest of the page: store them one by one.
        _store_one_by_one(new, counts)
        counts.new -= counts.unstorable
    return counts


def _store_one_by_one(logs: list[TaggedLog], counts: StoreCounts) -> None:
    for log in logs:
        try:
            with transaction.atomic():
                TaggedLog.objects.bulk_create([log], ignore_conflicts=True)
        except DatabaseError as exc:
            counts.unstorable += 1
            first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            # The database's words, which may quote the value: made storable for the run record.
            reason = escape_text(first_line)
            logger.warning("log_unstorable", log_id=_event_id(log.log_id), reason=reason)
            list_refused(counts.refused_logs, log.log_id, f"the database refused it ({reason})")


@dataclass(frozen=True)
class LogWindow:
    """Which logs a tag_logs run asks Braintrust for.

    ``incremental``: the default window, everything ingested after the last successful run's watermark
    (``after_xact_id``), with a bound on ``created`` that keeps the query range-filtered. Otherwise a
    backfill by ``created`` (--since/--until/--hours), which records no watermark.
    """

    since: datetime
    until: datetime | None = None
    after_xact_id: str | None = None
    incremental: bool = False


def incremental_window(
    *, now: datetime, default_hours: int, overlap_hours: int, lookback_days: int, shard: Shard | None = None
) -> LogWindow:
    """Where the next default tag_logs run starts (``watermarks.run_start``, from every successful run of the
    project, whatever its shard layout).

    After the watermark: a log flushed late (an old `created`, a new `_xact_id`) is still found, as long as
    it was created within ``lookback_days`` (the retention: older logs would be pruned anyway). A first
    run takes ``default_hours`` back. A run after one from before the watermark existed starts at that
    run's newest log minus ``overlap_hours``, as it used to.
    """
    start = run_start(
        shard, now=now, default_hours=default_hours, overlap_hours=overlap_hours, lookback_days=lookback_days
    )
    return LogWindow(since=start.since, after_xact_id=start.after_xact_id, incremental=True)
