"""Retention: tagged-log content is users' chat text, so rows older than the retention period go.

The insertion ledger keeps each pruned log's Braintrust id (its link to the row is set to NULL), so
a log that comes back, in a backfill say, is still never inserted into a dataset twice.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from django.db import transaction

from braintrust_ops.models import TaggedLog

logger = structlog.get_logger(__name__)

# Deleted in chunks so no single transaction holds a month of rows.
CHUNK = 1000


@dataclass
class PruneReport:
    cutoff: datetime
    deleted: int = 0
    dry_run: bool = False

    def as_counters(self) -> dict:
        return {"cutoff": self.cutoff.isoformat(), "deleted": self.deleted}

    def problem(self, config) -> str:
        return ""


def tagged_logs_prune(*, retention_days: int, now: datetime, dry_run: bool = False) -> PruneReport:
    """Delete the tagged logs (and their tags) whose Braintrust log time is older than the retention."""
    report = PruneReport(cutoff=now - timedelta(days=retention_days), dry_run=dry_run)
    old = TaggedLog.objects.filter(logged_at__lt=report.cutoff)
    if dry_run:
        report.deleted = old.count()
        return report
    while chunk := list(old.order_by("pk").values_list("pk", flat=True)[:CHUNK]):
        with transaction.atomic():
            report.deleted += TaggedLog.objects.filter(pk__in=chunk).delete()[1].get(TaggedLog._meta.label, 0)
    logger.info("tagged_logs_pruned", **report.as_counters())
    return report
