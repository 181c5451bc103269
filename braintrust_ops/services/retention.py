"""Retention: tagged-log content is users' chat text, so rows older than the retention period go.

The insertion ledger keeps each pruned log's Braintrust id (its link to the row is set to NULL), so
a log that comes back, in a backfill say, is still never inserted into a dataset twice.

What was never labelled stays, however old: a log still pending (after a long outage, say), failed
with attempts left, or waiting in an open Message Batch. Deleting it would lose the log for good: the
next run's window starts after it, so nothing would bring it back, and it would never reach a dataset.
Once labelled (or given up at the attempt limit) it goes with the rest.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from django.db import transaction
from django.db.models import Q

from braintrust_ops.models import TaggedLog

logger = structlog.get_logger(__name__)

# Deleted in chunks so no single transaction holds a month of rows.
CHUNK = 1000


@dataclass
class PruneReport:
    cutoff: datetime
    deleted: int = 0
    #: older than the cutoff but never labelled (pending, failed with attempts left, in an open batch): kept
    kept_never_labelled: int = 0
    dry_run: bool = False

    def as_counters(self) -> dict:
        return {
            "cutoff": self.cutoff.isoformat(),
            "deleted": self.deleted,
            "kept_never_labelled": self.kept_never_labelled,
        }

    def problem(self, config) -> str:
        return ""


def never_labelled(max_attempts: int) -> Q:
    """Logs a later tag_logs run still labels: pending, failed with attempts left, or in an open batch
    (the queue's own rule, services.tagging.queue.queue_queryset, plus the batch's logs)."""
    return (
        Q(status=TaggedLog.Status.PENDING)
        | Q(status=TaggedLog.Status.FAILED, attempts__lt=max_attempts)
        | Q(batch__isnull=False)
    )


def tagged_logs_prune(*, retention_days: int, now: datetime, max_attempts: int, dry_run: bool = False) -> PruneReport:
    """Delete the tagged logs (and their tags) whose Braintrust log time is older than the retention,
    except those never labelled."""
    report = PruneReport(cutoff=now - timedelta(days=retention_days), dry_run=dry_run)
    older = TaggedLog.objects.filter(logged_at__lt=report.cutoff)
    report.kept_never_labelled = older.filter(never_labelled(max_attempts)).count()
    old = older.exclude(never_labelled(max_attempts))
    if dry_run:
        report.deleted = old.count()
        return report
    while chunk := list(old.order_by("pk").values_list("pk", flat=True)[:CHUNK]):
        with transaction.atomic():
            report.deleted += TaggedLog.objects.filter(pk__in=chunk).delete()[1].get(TaggedLog._meta.label, 0)
    logger.info("tagged_logs_pruned", **report.as_counters())
    return report
