"""push_to_datasets: every tagged log into each dataset subscribed to one of its tags, exactly once.

Exactly once rests on two things: the ledger (DatasetInsertion) says which (log, dataset) pairs are
done, so only new pairs are sent; and each row's id is derived from the log id, so a repeated
insert (a retry, a lost ledger) is an upsert on Braintrust's side, not a duplicate. No run reads
the target datasets' rows, so its cost does not grow with their size.
"""

import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import structlog
from django.db import transaction

from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.conf import OpsConfig, without_secrets
from braintrust_ops.exceptions import (
    AuthenticationFailed,
    BraintrustOpsError,
    PermanentServiceError,
    RemoteServiceError,
)
from braintrust_ops.insert_batches import batches, encoded_size, fits_alone
from braintrust_ops.models import CommandRun, DatasetInsertion, LogTag, TaggedLog
from braintrust_ops.printable import printable
from braintrust_ops.services.log_sync import MAX_REFUSED_LISTED
from braintrust_ops.stopping import Interrupted
from braintrust_ops.storable import original_json, readable_id
from braintrust_ops.subscriptions import Subscription, match_logs_to_datasets, subscriptions_from_datasets
from braintrust_ops.taggable_tags import select_taggable_tags

if TYPE_CHECKING:
    from braintrust_ops.clients.braintrust import InsertDatasetEvent

logger = structlog.get_logger(__name__)

ROW_ID_NAMESPACE = uuid.UUID("6f1c7c1e-5b1a-4f8e-9a57-3c1f0b2d9e41")
LEDGER_LOOKUP_CHUNK = 1000
# Logs read from the database at a time to build events: memory stays flat whatever the backlog.
EVENT_CHUNK = 500
# DatasetInsertion.dataset_name is varchar(255); the name is a label, the id is the key.
MAX_NAME_LENGTH = 255


def dataset_row_id(log_id: str) -> str:
    """The dataset row id for a log: the same log always gets the same id, in every run."""
    return str(uuid.uuid5(ROW_ID_NAMESPACE, log_id))


@dataclass
class DatasetReport:
    dataset_id: str
    dataset_name: str
    matched: int = 0
    already_present: int = 0
    to_insert: int = 0
    inserted: int = 0
    #: rows not inserted this run: refused on their own, or left when the dataset failed
    failed: int = 0
    #: rows the dataset refused on their own (too large, or their content), recorded in the ledger
    refused: int = 0
    #: rows refused as many times as BRAINTRUST_OPS_PUSH_MAX_ATTEMPTS allows: no longer sent
    given_up: int = 0
    #: rows too large for any insert request, judged before sending: given up at once, not a failure
    too_large: int = 0
    #: rows already in the dataset whose log, labelled again by Claude since, no longer carries a subscribed
    #: tag. Claude's relabels leave datasets as they are: the rows stay, and a person decides.
    no_longer_matching: int = 0
    #: rows taken out of the dataset because a person's label removed the tag it subscribes to (the dry
    #: run's: rows it would take out)
    removed: int = 0
    error: str = ""


@dataclass
class PushReport:
    datasets_listed: int = 0
    subscribed: int = 0
    skipped_malformed: list[str] = field(default_factory=list)
    unknown_tags: list[str] = field(default_factory=list)
    datasets: list[DatasetReport] = field(default_factory=list)
    requests: int = 0
    reconciled: int = 0
    #: "log id (dataset): why" of the rows given up at once as too large, the first MAX_REFUSED_LISTED
    refused_logs: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    dry_run: bool = False

    @property
    def inserted(self) -> int:
        return sum(item.inserted for item in self.datasets)

    @property
    def failed(self) -> int:
        return sum(item.failed for item in self.datasets)

    @property
    def refused(self) -> int:
        return sum(item.refused for item in self.datasets)

    @property
    def given_up(self) -> int:
        return sum(item.given_up for item in self.datasets)

    @property
    def too_large(self) -> int:
        return sum(item.too_large for item in self.datasets)

    @property
    def failed_datasets(self) -> list[DatasetReport]:
        return [item for item in self.datasets if item.error]

    @property
    def failure_rate(self) -> float:
        attempted = self.inserted + self.failed
        return self.failed / attempted if attempted else 0.0

    def as_counters(self) -> dict:
        return asdict(self)

    def problem(self, config: OpsConfig) -> str:
        """push_to_datasets' success rule: every dataset pushed, and few enough rows refused."""
        failed = self.failed_datasets
        if failed:
            names = ", ".join(item.dataset_name for item in failed)
            return (
                f"{len(failed)} dataset(s) failed: {names} ({failed[0].error}). "
                "What was confirmed is recorded; run push_to_datasets again to send the rest."
            )
        threshold = config.push_failure_threshold
        if self.failure_rate > threshold:
            return (
                f"{self.failed} rows failed ({self.failure_rate:.0%}, above the {threshold:.0%} threshold): "
                f"{self.refused} refused by their dataset on their own, recorded in the ledger (admin: Dataset "
                "insertions, status failed) and retried by the next runs up to BRAINTRUST_OPS_PUSH_MAX_ATTEMPTS."
            )
        return ""


def label_of(log: TaggedLog) -> list[str]:
    """The log's label as datasets see it: a person's when there is one (it wins), else Claude's."""
    return list(log.human_tags) if log.human_tags is not None else log.tag_names


def event_for(log: TaggedLog, tags: list[str]) -> "InsertDatasetEvent":
    """A dataset row as Braintrust's own "add to dataset" makes it, with provenance in metadata. The content
    goes out as the log held it: decoded from storable's encoding (requests writes a NUL or a lone surrogate
    as its JSON escape, which Braintrust reads back as that character)."""
    return {
        "id": dataset_row_id(log.log_id),
        "input": original_json(log.input),
        "expected": original_json(log.output),
        "tags": tags,
        # The SDK's generated Metadata type keeps only "model"; the API's metadata is any JSON object with
        # string keys (the same field's docstring says so), which a TypedDict cannot spell.
        "metadata": {  # type: ignore[typeddict-item]
            "source_log_id": log.log_id,
            "source_root_span_id": log.root_span_id,
            "source_logged_at": log.logged_at.isoformat(),
            "assigned_tags": tags,
            "label_source": "person" if log.human_tags is not None else "claude",
            "tagging_model": log.model,
            "tagging_prompt_version": log.prompt_version,
            "source_metadata": original_json(log.metadata),
        },
    }


def _labelled_log_tags() -> Iterator[tuple[str, str]]:
    """(log id, tag) of every label as datasets see it: Claude's, and a person's where one exists."""
    yield from (
        LogTag.objects.filter(tagged_log__status=TaggedLog.Status.TAGGED, tagged_log__human_tags__isnull=True)
        .values_list("tagged_log__log_id", "name")
        .iterator(chunk_size=5000)
    )
    people = TaggedLog.objects.filter(human_tags__isnull=False).values_list("log_id", "human_tags")
    for log_id, tags in people.iterator(chunk_size=5000):
        for tag in tags or []:
            yield log_id, tag


def _not_yet_inserted(dataset_id: str, log_ids: set[str], *, max_attempts: int | None = None) -> tuple[list[str], int]:
    """(the candidates still to send to this dataset, how many were given up), looked up in chunks.

    Still to send: no ledger row, or a failed one with attempts left. ``max_attempts`` None: only the
    confirmed inserts count as done (the reconcile)."""
    ordered = sorted(log_ids)
    pending: list[str] = []
    given_up = 0
    for start in range(0, len(ordered), LEDGER_LOOKUP_CHUNK):
        chunk = ordered[start : start + LEDGER_LOOKUP_CHUNK]
        ledger = DatasetInsertion.objects.filter(dataset_id=dataset_id, log_id__in=chunk)
        done = set(ledger.filter(status=DatasetInsertion.Status.INSERTED).values_list("log_id", flat=True))
        if max_attempts is not None:
            stopped = set(
                ledger.filter(status=DatasetInsertion.Status.FAILED, attempts__gte=max_attempts).values_list(
                    "log_id", flat=True
                )
            )
            given_up += len(stopped)
            done |= stopped
        pending.extend(log_id for log_id in chunk if log_id not in done)
    return pending, given_up


# At most this many subscribing datasets named in the error for a --dataset that matches none.
MAX_NAMES_LISTED = 20


def _select(subscriptions: list[Subscription], wanted: list[str] | None) -> list[Subscription]:
    """The subscriptions ``--dataset`` names (by name or id). A name that matches none fails the run before
    anything is sent: a typo must not read as a push with nothing to do."""
    if not wanted:
        return subscriptions
    unmatched = [
        name for name in wanted if not any(name in (sub.dataset_id, sub.dataset_name) for sub in subscriptions)
    ]
    if unmatched:
        names = sorted(sub.dataset_name for sub in subscriptions)
        listed = ", ".join(names[:MAX_NAMES_LISTED]) + (
            f" and {len(names) - MAX_NAMES_LISTED} more" if len(names) > MAX_NAMES_LISTED else ""
        )
        raise BraintrustOpsError(
            f"--dataset {', '.join(repr(printable(name)) for name in unmatched)} matches no subscribed dataset "
            "(by name or id); nothing was pushed. "
            + (f"The datasets that subscribe: {listed}." if names else "No dataset subscribes to any tag.")
        )
    return [sub for sub in subscriptions if sub.dataset_id in wanted or sub.dataset_name in wanted]


@dataclass
class _Pusher:
    """One dataset's push: batches capped by count and bytes, split when refused as too large, and a row
    refused on its own recorded in the ledger as failed instead of failing the dataset."""

    subscription: Subscription
    braintrust: BraintrustClient
    config: OpsConfig
    run: CommandRun | None
    report: DatasetReport
    push_report: PushReport

    def push(self, log_ids: list[str]) -> None:
        for batch in batches(
            self._sized_events(log_ids),
            max_rows=self.config.push_batch_size,
            max_bytes=self.config.push_max_request_bytes,
        ):
            try:
                self._send_batch(batch)
            except RemoteServiceError as exc:
                if isinstance(exc, AuthenticationFailed):
                    raise
                # Inserts are idempotent and the ledger only holds confirmed rows: the next run resends.
                self.report.failed += len(log_ids) - self.report.inserted - self.report.refused
                self.report.error = str(exc)
                logger.error(
                    "dataset_push_failed",
                    dataset_id=self.subscription.dataset_id,
                    dataset=self.subscription.dataset_name,
                    error=str(exc),
                )
                return

    def remove(self, entries: list[DatasetInsertion]) -> None:
        """Take the rows out, as Braintrust documents a delete (``_object_delete`` on the row's id, OpenAPI
        ``InsertDatasetEvent``), and mark them removed in the ledger once Braintrust confirms."""
        batch_size = self.config.push_batch_size
        for start in range(0, len(entries), batch_size):
            chunk = entries[start : start + batch_size]
            events: list[InsertDatasetEvent] = [{"id": entry.row_id, "_object_delete": True} for entry in chunk]
            self.push_report.requests += 1
            try:
                self.braintrust.insert_dataset_events(self.subscription.dataset_id, events)
            except RemoteServiceError as exc:
                if isinstance(exc, AuthenticationFailed):
                    raise
                self.report.error = str(exc)
                logger.error("dataset_rows_not_removed", dataset=self.subscription.dataset_name, error=str(exc))
                return
            DatasetInsertion.objects.filter(pk__in=[entry.pk for entry in chunk]).update(
                status=DatasetInsertion.Status.REMOVED, run=self.run
            )
            self.report.removed += len(chunk)

    def _sized_events(self, log_ids: list[str]) -> Iterator[tuple[tuple[TaggedLog, "InsertDatasetEvent"], int]]:
        """Each log's event and its encoded size, read from the database a chunk at a time (memory stays
        flat); a row too large for any request is given up here, before anything is sent."""
        for start in range(0, len(log_ids), EVENT_CHUNK):
            chunk = log_ids[start : start + EVENT_CHUNK]
            for log in TaggedLog.objects.filter(log_id__in=chunk).prefetch_related("tags").order_by("log_id"):
                event = event_for(log, label_of(log))
                size = encoded_size(event)
                if fits_alone(size, self.config.push_max_request_bytes):
                    yield (log, event), size
                else:
                    self._give_up_too_large(log, size)

    def _give_up_too_large(self, log: TaggedLog, size: int) -> None:
        """A row no insert request can carry: the same tomorrow, so judged once. It is given up at once (its
        ledger row failed, at the attempt limit), named in the run's refused logs, and not a failure of the
        run: trying it night after night failed three nights and skipped the prune after each.

        Not shortened to fit: a dataset row is an evaluation case, the conversation and the answer as they
        were; a cut one would be another case, silently. (Tagging does shorten, each side to
        TAGGING_TEXT_LIMIT: a label needs the gist, and the label is what is stored, not the text.)"""
        cap = self.config.push_max_request_bytes
        reason = (
            f"the row is {size:,} bytes, over the {cap:,}-byte request cap (BRAINTRUST_OPS_PUSH_MAX_REQUEST_BYTES): "
            "no insert request can carry it, so it was given up at once"
        )
        DatasetInsertion.objects.update_or_create(
            log_id=log.log_id,
            dataset_id=self.subscription.dataset_id,
            defaults=self._ledger_fields(
                log, status=DatasetInsertion.Status.FAILED, last_error=reason, attempts=self.config.push_max_attempts
            ),
        )
        logger.warning(
            "dataset_row_too_large", dataset=self.subscription.dataset_name, log_id=log.log_id, size=size, cap=cap
        )
        self.report.too_large += 1
        listed = self.push_report.refused_logs
        if len(listed) < MAX_REFUSED_LISTED:
            listed.append(f"{readable_id(log.log_id)} ({self.subscription.dataset_name}): {reason}")

    def _send(self, batch: list[tuple[TaggedLog, "InsertDatasetEvent"]]) -> list[tuple[TaggedLog, str]]:
        """Insert the batch, halving it while Braintrust refuses it; return the rows refused on their own."""
        try:
            self.push_report.requests += 1
            row_ids = self.braintrust.insert_dataset_events(self.subscription.dataset_id, [e for _, e in batch])
        except PermanentServiceError as exc:
            if isinstance(exc, AuthenticationFailed) or exc.status not in (400, 413):
                raise
            if len(batch) == 1:
                return [(batch[0][0], str(exc))]
            middle = len(batch) // 2
            return self._send(batch[:middle]) + self._send(batch[middle:])
        self._record_inserted([log for log, _ in batch], row_ids)
        return []

    def _send_batch(self, batch: list[tuple[TaggedLog, "InsertDatasetEvent"]]) -> None:
        # Each row refused on its own uses one of its attempts; a request wrong for every row (an API
        # change) shows as every row refused, the run failing loudly, and the rows given up only after
        # PUSH_MAX_ATTEMPTS nights of it, while a fix can still land.
        for log, reason in self._send(batch):
            self._refuse([log], reason)

    def _record_inserted(self, logs: list[TaggedLog], row_ids: list[str]) -> None:
        with transaction.atomic():
            DatasetInsertion.objects.bulk_create(
                [
                    self._ledger_row(log, status=DatasetInsertion.Status.INSERTED, row_id=row_id)
                    for log, row_id in zip(logs, row_ids, strict=True)
                ],
                update_conflicts=True,
                unique_fields=["log_id", "dataset_id"],
                update_fields=["status", "row_id", "last_error", "run", "tagged_log", "dataset_name", "updated_at"],
            )
        self.report.inserted += len(logs)

    def _refuse(self, logs: list[TaggedLog], reason: str) -> None:
        """Record rows the dataset will not take as they are: failed, with the reason, one more attempt."""
        reason = without_secrets(reason)
        for log in logs:
            with transaction.atomic():
                entry, created = DatasetInsertion.objects.select_for_update().get_or_create(
                    log_id=log.log_id,
                    dataset_id=self.subscription.dataset_id,
                    defaults=self._ledger_fields(log, status=DatasetInsertion.Status.FAILED, last_error=reason[:2000]),
                )
                if not created:
                    entry.attempts += 1
                    entry.last_error = reason[:2000]
                    entry.run = self.run
                    entry.save(update_fields=["attempts", "last_error", "run", "updated_at"])
            logger.warning(
                "dataset_row_refused",
                dataset=self.subscription.dataset_name,
                log_id=log.log_id,
                attempts=1 if created else entry.attempts,
                reason=reason,
            )
        self.report.refused += len(logs)
        self.report.failed += len(logs)

    def _ledger_fields(self, log: TaggedLog, **fields) -> dict:
        return {
            "tagged_log": log,
            "dataset_name": self.subscription.dataset_name[:MAX_NAME_LENGTH],
            "run": self.run,
            **fields,
        }

    def _ledger_row(self, log: TaggedLog, **fields) -> DatasetInsertion:
        return DatasetInsertion(
            log_id=log.log_id, dataset_id=self.subscription.dataset_id, **self._ledger_fields(log, **fields)
        )


def datasets_push(
    *,
    config: OpsConfig,
    braintrust: BraintrustClient,
    run: CommandRun | None,
    dataset_filter: list[str] | None = None,
    dry_run: bool = False,
    reconcile: bool = False,
) -> PushReport:
    """Insert each tagged log into each subscribing dataset it is not yet in. ``run`` is None for a dry run."""
    started = time.monotonic()
    push_report = PushReport(dry_run=dry_run)
    project_id = config.project_id
    braintrust.get_project(project_id)  # a mistyped id fails here, not as "no subscribing datasets"

    datasets = braintrust.list_datasets(project_id)
    push_report.datasets_listed = len(datasets)
    subscriptions, skipped = subscriptions_from_datasets(datasets)
    for item in skipped:
        logger.warning(
            "dataset_marker_malformed", dataset_id=item.dataset_id, dataset=item.dataset_name, reason=item.reason
        )
        push_report.skipped_malformed.append(f"{item.dataset_name}: {item.reason}")

    subscriptions = _select(subscriptions, dataset_filter)
    push_report.subscribed = len(subscriptions)
    if not subscriptions:
        push_report.elapsed_seconds = round(time.monotonic() - started, 3)
        return push_report

    taggable = {tag.name for tag in select_taggable_tags(braintrust.list_project_tags(project_id))}
    for subscription in subscriptions:
        for tag in sorted(subscription.tags - taggable):
            logger.warning("dataset_subscribes_to_unknown_tag", dataset=subscription.dataset_name, tag=printable(tag))
            push_report.unknown_tags.append(f"{subscription.dataset_name}: {printable(tag)}")

    if reconcile and not dry_run:
        for subscription in subscriptions:
            push_report.reconciled += datasets_reconcile(braintrust=braintrust, subscription=subscription, run=run)

    matches = match_logs_to_datasets(_labelled_log_tags(), subscriptions)
    try:
        _push_each(
            subscriptions,
            matches,
            config=config,
            braintrust=braintrust,
            run=run,
            dry_run=dry_run,
            push_report=push_report,
        )
    except Interrupted as exc:
        exc.report = push_report  # what was confirmed before the signal: the run record keeps its counters
        raise
    push_report.elapsed_seconds = round(time.monotonic() - started, 3)
    logger.info(
        "datasets_pushed",
        subscribed=push_report.subscribed,
        inserted=push_report.inserted,
        failed=push_report.failed,
        refused=push_report.refused,
        given_up=push_report.given_up,
        failed_datasets=len(push_report.failed_datasets),
    )
    return push_report


def _no_longer_matching(subscription: Subscription) -> int:
    """Inserted rows of the dataset whose log's current label holds none of its subscribed tags (a log
    whose content was pruned is left out: its label is gone with it)."""
    return (
        DatasetInsertion.objects.filter(
            dataset_id=subscription.dataset_id,
            status=DatasetInsertion.Status.INSERTED,
            tagged_log__status=TaggedLog.Status.TAGGED,
        )
        .filter(tagged_log__human_tags__isnull=True)
        .exclude(tagged_log__tags__name__in=subscription.tags)
        .count()
    )


def _corrected_out(subscription: Subscription) -> list[DatasetInsertion]:
    """Rows in the dataset whose log a person labelled without any tag the dataset subscribes to."""
    inserted = DatasetInsertion.objects.filter(
        dataset_id=subscription.dataset_id,
        status=DatasetInsertion.Status.INSERTED,
        tagged_log__human_tags__isnull=False,
    ).select_related("tagged_log")
    return [
        entry
        for entry in inserted.iterator(chunk_size=1000)
        if entry.tagged_log is not None and not set(entry.tagged_log.human_tags or []) & subscription.tags
    ]


def _push_each(subscriptions, matches, *, config, braintrust, run, dry_run, push_report: PushReport) -> None:
    for subscription in subscriptions:
        matched = matches[subscription.dataset_id]
        report = DatasetReport(dataset_id=subscription.dataset_id, dataset_name=subscription.dataset_name)
        push_report.datasets.append(report)
        report.matched = len(matched)
        pending, report.given_up = _not_yet_inserted(
            subscription.dataset_id, matched, max_attempts=config.push_max_attempts
        )
        report.already_present = report.matched - len(pending) - report.given_up
        report.to_insert = len(pending)
        report.no_longer_matching = _no_longer_matching(subscription)
        corrected_out = _corrected_out(subscription)
        if dry_run:
            report.removed = len(corrected_out)
            continue
        pusher = _Pusher(
            subscription=subscription,
            braintrust=braintrust,
            config=config,
            run=run,
            report=report,
            push_report=push_report,
        )
        if corrected_out:
            pusher.remove(corrected_out)
        if pending:
            pusher.push(pending)


def datasets_reconcile(*, braintrust: BraintrustClient, subscription: Subscription, run: CommandRun | None) -> int:
    """Read one dataset once and add to the ledger the rows this app inserted that it lost track of."""
    added = 0
    for events in braintrust.iter_dataset_events(subscription.dataset_id):
        by_log_id = {}
        for event in events:
            metadata = event.get("metadata")
            log_id = metadata.get("source_log_id") if isinstance(metadata, dict) else None
            if isinstance(log_id, str) and event.get("id") == dataset_row_id(log_id):
                by_log_id[log_id] = event["id"]
        missing, _ = _not_yet_inserted(subscription.dataset_id, set(by_log_id))
        logs = {log.log_id: log for log in TaggedLog.objects.filter(log_id__in=missing)}
        created = DatasetInsertion.objects.bulk_create(
            [
                DatasetInsertion(
                    log_id=log_id,
                    tagged_log=logs.get(log_id),
                    dataset_id=subscription.dataset_id,
                    dataset_name=subscription.dataset_name[:MAX_NAME_LENGTH],
                    row_id=by_log_id[log_id],
                    run=run,
                )
                for log_id in missing
            ],
            # A row recorded as failed that is in the dataset after all is an insert: say so.
            update_conflicts=True,
            unique_fields=["log_id", "dataset_id"],
            update_fields=["status", "row_id", "last_error", "run", "updated_at"],
        )
        added += len(created)
    return added
