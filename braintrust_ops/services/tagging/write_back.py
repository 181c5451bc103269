"""Write-back: each label added to its source log's tags in Braintrust, where people read and filter logs.

The write is a merge into the log (``BraintrustClient.merge_log_events``, OpenAPI ``InsertProjectLogsEvent``
with ``_is_merge``), so nothing else on it changes: its scores, comments, metadata and the tags a person
put there stay. Braintrust unites a merged ``tags`` array with the stored one (braintrust 0.47/0.48
``util.py``, ``merge_dicts_with_paths``: ``_SET_UNION_FIELDS = {"tags"}``), so a write sends only the tags
to add; a relabel that drops a tag this app wrote before removes it with ``_array_delete``, and never a tag
it did not write.

Exactly once per label: ``TaggedLog.written_tags`` and ``written_at`` are the ledger of what was written,
recorded after Braintrust confirmed each request. A crash between the two sends the same merge again on the
next run, which changes nothing (a union, and the deletion of tags already gone).

The write gives the log a new ``_xact_id``, so the next run reads it again: a known log is left as it is
(``log_sync.logs_store``), which costs no Claude call and no dataset row.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import structlog
from django.db import transaction
from django.db.models import F, Prefetch, Q, QuerySet
from django.utils import timezone

from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.conf import OpsConfig
from braintrust_ops.exceptions import AuthenticationFailed, PermanentServiceError, TransientServiceError
from braintrust_ops.insert_batches import batches, encoded_size
from braintrust_ops.models import LogTag, TaggedLog
from braintrust_ops.shards import Shard
from braintrust_ops.stopping import StopRequest

logger = structlog.get_logger(__name__)

# Logs read from the database at a time: memory stays flat whatever the backlog.
CHUNK = 500
MAX_ERROR = 500


@dataclass
class WriteBackCounts:
    #: logs whose source log got this run's tag changes
    written: int = 0
    #: labels with nothing to change on the source log (no tag, or the tags written already): ledger only
    unchanged: int = 0
    requests: int = 0
    #: writes Braintrust refused on their own: kept with their error, sent again once the log is relabelled
    refused: int = 0
    #: labels still to write when the run ended (the write failed or the run stopped); the next run writes them
    pending: int = 0
    #: why the writing stopped early ("" when it did not)
    problem: str = ""


@dataclass(frozen=True)
class TagChange:
    add: list[str]
    remove: list[str]

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove


def tag_change(label: list[str], written: list[str] | None) -> TagChange:
    """What to change on the source log so it carries ``label``, given the tags written before: add what is
    new, remove what this app wrote and the label no longer has. Tags it never wrote are not its to remove."""
    before = set(written or [])
    return TagChange(add=sorted(set(label) - before), remove=sorted(before - set(label)))


def merge_event(log_id: str, change: TagChange) -> dict:
    event: dict = {"id": log_id, "_is_merge": True}
    if change.add:
        event["tags"] = change.add
    if change.remove:
        event["_array_delete"] = [{"path": ["tags"], "delete": change.remove}]
    return event


def to_write() -> QuerySet:
    """Labels not yet written as they stand: never written, or labelled again since."""
    # A log a person labelled is theirs: its tags in Braintrust are the person's, and stay as they are.
    pending = TaggedLog.objects.filter(status=TaggedLog.Status.TAGGED, human_tags__isnull=True).filter(
        Q(written_at__isnull=True) | Q(written_at__lt=F("tagged_at"))
    )
    return pending.order_by("pk")


def count_to_write(shard: Shard | None) -> int:
    ids = to_write().values_list("log_id", flat=True)
    return ids.count() if shard is None else sum(1 for log_id in ids.iterator() if shard.owns(log_id))


def labels_write_back(
    *, braintrust: BraintrustClient, config: OpsConfig, shard: Shard | None, stop: StopRequest
) -> WriteBackCounts:
    """Write every label not yet written (this shard's), in requests within the insert limits."""
    counts = WriteBackCounts()
    # One stream of writes across the database chunks, so requests are filled to the insert limits.
    _send(_writes(shard, counts), braintrust=braintrust, config=config, counts=counts, stop=stop)
    counts.pending = count_to_write(shard)
    logger.info("labels_written_back", **{k: v for k, v in vars(counts).items() if k != "problem"})
    return counts


def _writes(shard: Shard | None, counts: WriteBackCounts) -> Iterator[tuple[TaggedLog, list[str], dict]]:
    """(log, label, merge event) of each label that changes its source log; the others are recorded as they
    come (nothing to send)."""
    for chunk in _chunks(shard):
        for log in chunk:
            label = [tag.name for tag in log.tags.all()]
            change = tag_change(label, log.written_tags)
            if change.empty:
                _record([log], label_of={log.pk: label})
                counts.unchanged += 1
            else:
                yield log, label, merge_event(log.log_id, change)


def _chunks(shard: Shard | None) -> Iterator[list[TaggedLog]]:
    """The labels to write, a chunk at a time, each read afresh: a chunk written is no longer pending."""
    last_pk = 0
    tags = Prefetch("tags", queryset=LogTag.objects.order_by("name"))
    while True:
        rows = list(to_write().filter(pk__gt=last_pk).prefetch_related(tags)[:CHUNK])
        if not rows:
            return
        last_pk = rows[-1].pk
        own = [log for log in rows if shard is None or shard.owns(log.log_id)]
        if own:
            yield own


def _send(events, *, braintrust: BraintrustClient, config: OpsConfig, counts: WriteBackCounts, stop) -> bool:
    """Send the events in requests within the insert limits; False when the writing must stop."""
    sized = (((log, label, event), encoded_size(event)) for log, label, event in events)
    for batch in batches(sized, max_rows=config.push_batch_size, max_bytes=config.push_max_request_bytes):
        if stop.is_set():
            counts.problem = "the run was asked to stop"
            return False
        if not _send_batch(batch, braintrust=braintrust, config=config, counts=counts):
            return False
    return True


def _send_batch(batch: list, *, braintrust: BraintrustClient, config: OpsConfig, counts: WriteBackCounts) -> bool:
    try:
        braintrust.merge_log_events(config.project_id, [event for _, _, event in batch])
    except AuthenticationFailed as exc:
        counts.problem = f"{exc} Write-back needs a key that may update the project's logs."
        return False
    except TransientServiceError as exc:
        counts.problem = str(exc)
        return False
    except PermanentServiceError as exc:
        if len(batch) == 1:
            _refuse(batch[0][0], str(exc))
            counts.refused += 1
            return True
        # Which write was refused: each is sent alone, so one cannot hold back the others.
        return all(_send_batch([item], braintrust=braintrust, config=config, counts=counts) for item in batch)
    counts.requests += 1
    _record([log for log, _, _ in batch], label_of={log.pk: label for log, label, _ in batch}, events=batch)
    counts.written += len(batch)
    return True


def _record(logs: list[TaggedLog], *, label_of: dict[int, list[str]], events: list | None = None) -> None:
    """The ledger: these labels are on their source logs. The tags each log now carries (``source_tags``) are
    what its next read should find: that read is this write coming back, not a person's change."""
    now = timezone.now()
    # A log never read since this version (source_tags null) has no known start: its next read takes one.
    source_of = {
        log.pk: _after_write(log.source_tags, event) for log, _, event in events or [] if log.source_tags is not None
    }
    with transaction.atomic():
        for log in logs:
            fields = {"written_tags": label_of[log.pk], "written_at": now, "write_error": ""}
            if log.pk in source_of:
                fields["source_tags"] = source_of[log.pk]
            TaggedLog.objects.filter(pk=log.pk).update(**fields)


def _after_write(source_tags: list[str], event: dict) -> list[str]:
    removed = {tag for deletion in event.get("_array_delete", []) for tag in deletion["delete"]}
    return sorted((set(source_tags) | set(event.get("tags", []))) - removed)


def _refuse(log: TaggedLog, error: str) -> None:
    logger.warning("label_write_refused", log_id=log.log_id, error=error[:MAX_ERROR])
    TaggedLog.objects.filter(pk=log.pk).update(written_at=timezone.now(), write_error=error[:MAX_ERROR])
