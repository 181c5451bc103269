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

import structlog
from django.db import transaction

from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.conf import OpsConfig
from braintrust_ops.exceptions import AuthenticationFailed, RemoteServiceError
from braintrust_ops.models import CommandRun, DatasetInsertion, LogTag, TaggedLog
from braintrust_ops.subscriptions import Subscription, match_logs_to_datasets, subscriptions_from_datasets
from braintrust_ops.taggable_tags import select_taggable_tags

logger = structlog.get_logger(__name__)

ROW_ID_NAMESPACE = uuid.UUID("6f1c7c1e-5b1a-4f8e-9a57-3c1f0b2d9e41")
LEDGER_LOOKUP_CHUNK = 1000


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
    failed: int = 0
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
    elapsed_seconds: float = 0.0
    dry_run: bool = False

    @property
    def inserted(self) -> int:
        return sum(item.inserted for item in self.datasets)

    @property
    def failed(self) -> int:
        return sum(item.failed for item in self.datasets)

    @property
    def failed_datasets(self) -> list[DatasetReport]:
        return [item for item in self.datasets if item.error]

    @property
    def failure_rate(self) -> float:
        attempted = self.inserted + self.failed
        return self.failed / attempted if attempted else 0.0

    def as_counters(self) -> dict:
        return asdict(self)


def event_for(log: TaggedLog, tags: list[str]) -> dict:
    """A dataset row as Braintrust's own "add to dataset" makes it, with provenance in metadata."""
    return {
        "id": dataset_row_id(log.log_id),
        "input": log.input,
        "expected": log.output,
        "tags": tags,
        "metadata": {
            "source_log_id": log.log_id,
            "source_root_span_id": log.root_span_id,
            "source_logged_at": log.logged_at.isoformat(),
            "assigned_tags": tags,
            "tagging_model": log.model,
            "tagging_prompt_version": log.prompt_version,
            "source_metadata": log.metadata,
        },
    }


def _tagged_log_tags() -> Iterator[tuple[str, str]]:
    return (
        LogTag.objects.filter(tagged_log__status=TaggedLog.Status.TAGGED)
        .values_list("tagged_log__log_id", "name")
        .iterator(chunk_size=5000)
    )


def _not_yet_inserted(dataset_id: str, log_ids: set[str]) -> list[str]:
    """The candidates the ledger does not list for this dataset, looked up in chunks (bounded queries)."""
    ordered = sorted(log_ids)
    pending = []
    for start in range(0, len(ordered), LEDGER_LOOKUP_CHUNK):
        chunk = ordered[start : start + LEDGER_LOOKUP_CHUNK]
        done = set(
            DatasetInsertion.objects.filter(dataset_id=dataset_id, log_id__in=chunk).values_list("log_id", flat=True)
        )
        pending.extend(log_id for log_id in chunk if log_id not in done)
    return pending


def _select(subscriptions: list[Subscription], wanted: list[str] | None) -> list[Subscription]:
    if not wanted:
        return subscriptions
    return [sub for sub in subscriptions if sub.dataset_id in wanted or sub.dataset_name in wanted]


def _push_dataset(
    subscription: Subscription,
    log_ids: list[str],
    *,
    braintrust: BraintrustClient,
    batch_size: int,
    run: CommandRun | None,
    report: DatasetReport,
    push_report: PushReport,
) -> None:
    for start in range(0, len(log_ids), batch_size):
        batch_ids = log_ids[start : start + batch_size]
        logs = list(TaggedLog.objects.filter(log_id__in=batch_ids).prefetch_related("tags"))
        events = [event_for(log, log.tag_names) for log in logs]
        try:
            push_report.requests += 1
            row_ids = braintrust.insert_dataset_events(subscription.dataset_id, events)
        except AuthenticationFailed:
            raise
        except RemoteServiceError as exc:
            # Inserts are idempotent and the ledger only holds confirmed batches: the next run resends.
            report.failed += len(log_ids) - start
            report.error = str(exc)
            logger.error(
                "dataset_push_failed",
                dataset_id=subscription.dataset_id,
                dataset=subscription.dataset_name,
                error=str(exc),
            )
            return
        with transaction.atomic():
            DatasetInsertion.objects.bulk_create(
                [
                    DatasetInsertion(
                        log_id=log.log_id,
                        tagged_log=log,
                        dataset_id=subscription.dataset_id,
                        dataset_name=subscription.dataset_name,
                        row_id=row_id,
                        run=run,
                    )
                    for log, row_id in zip(logs, row_ids)
                ],
                ignore_conflicts=True,
            )
        report.inserted += len(logs)


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
    project_id = config.braintrust_project_id
    braintrust.get_project(project_id)  # a mistyped id fails here, not as "no subscribing datasets"

    datasets = braintrust.list_datasets(project_id)
    push_report.datasets_listed = len(datasets)
    subscriptions, skipped = subscriptions_from_datasets(datasets)
    for item in skipped:
        logger.warning("dataset_marker_malformed", dataset_id=item.dataset_id, dataset=item.dataset_name, reason=item.reason)
        push_report.skipped_malformed.append(f"{item.dataset_name}: {item.reason}")

    subscriptions = _select(subscriptions, dataset_filter)
    push_report.subscribed = len(subscriptions)
    if not subscriptions:
        push_report.elapsed_seconds = round(time.monotonic() - started, 3)
        return push_report

    taggable = {tag.name for tag in select_taggable_tags(braintrust.list_project_tags(project_id))}
    for subscription in subscriptions:
        for tag in sorted(subscription.tags - taggable):
            logger.warning("dataset_subscribes_to_unknown_tag", dataset=subscription.dataset_name, tag=tag)
            push_report.unknown_tags.append(f"{subscription.dataset_name}: {tag}")

    if reconcile and not dry_run:
        for subscription in subscriptions:
            push_report.reconciled += datasets_reconcile(braintrust=braintrust, subscription=subscription, run=run)

    matches = match_logs_to_datasets(_tagged_log_tags(), subscriptions)
    for subscription in subscriptions:
        matched = matches[subscription.dataset_id]
        report = DatasetReport(dataset_id=subscription.dataset_id, dataset_name=subscription.dataset_name)
        push_report.datasets.append(report)
        report.matched = len(matched)
        pending = _not_yet_inserted(subscription.dataset_id, matched)
        report.already_present = report.matched - len(pending)
        report.to_insert = len(pending)
        if dry_run or not pending:
            continue
        _push_dataset(
            subscription,
            pending,
            braintrust=braintrust,
            batch_size=config.push_batch_size,
            run=run,
            report=report,
            push_report=push_report,
        )
    push_report.elapsed_seconds = round(time.monotonic() - started, 3)
    logger.info(
        "datasets_pushed",
        subscribed=push_report.subscribed,
        inserted=push_report.inserted,
        failed=push_report.failed,
        failed_datasets=len(push_report.failed_datasets),
    )
    return push_report


def datasets_reconcile(*, braintrust: BraintrustClient, subscription: Subscription, run: CommandRun | None) -> int:
    """Read one dataset once and add to the ledger the rows this app inserted that it lost track of."""
    added = 0
    for events in braintrust.iter_dataset_events(subscription.dataset_id):
        by_log_id = {}
        for event in events:
            metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
            log_id = metadata.get("source_log_id")
            if isinstance(log_id, str) and event.get("id") == dataset_row_id(log_id):
                by_log_id[log_id] = event["id"]
        missing = _not_yet_inserted(subscription.dataset_id, set(by_log_id))
        logs = {log.log_id: log for log in TaggedLog.objects.filter(log_id__in=missing)}
        created = DatasetInsertion.objects.bulk_create(
            [
                DatasetInsertion(
                    log_id=log_id,
                    tagged_log=logs.get(log_id),
                    dataset_id=subscription.dataset_id,
                    dataset_name=subscription.dataset_name,
                    row_id=row_id,
                    run=run,
                )
                for log_id in missing
                for row_id in [by_log_id[log_id]]
            ],
            ignore_conflicts=True,
        )
        added += len(created)
    return added
