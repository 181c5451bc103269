"""People's labels, read from the logs as a run reads them (``braintrust_ops.reviews`` says when a log
carries one). Each read also records the taggable tags the log carries, so the next read can tell a
person's change from nothing."""

from dataclasses import dataclass

import structlog
from django.db import transaction
from django.utils import timezone

from braintrust_ops.models import TaggedLog
from braintrust_ops.reviews import review_of, reviewer
from braintrust_ops.services.log_sync import LogRow

logger = structlog.get_logger(__name__)


@dataclass
class ReviewCounts:
    #: people's labels recorded this run that differ from Claude's (or label a log Claude has not)
    corrections: int = 0
    #: people's labels recorded this run that agree with Claude's
    confirmations: int = 0

    def add(self, other: "ReviewCounts") -> None:
        self.corrections += other.corrections
        self.confirmations += other.confirmations


def reviews_record(rows: list[LogRow], *, taggable: set[str], reviewed_tag: str) -> ReviewCounts:
    """Record the people's labels these rows carry, and the taggable tags each carries now."""
    counts = ReviewCounts()
    logs = TaggedLog.objects.filter(log_id__in=[row.log_id for row in rows]).prefetch_related("tags")
    by_id = {log.log_id: log for log in logs}
    changed: list[TaggedLog] = []
    now = timezone.now()
    for row in rows:
        log = by_id.get(row.log_id)
        if log is None:  # refused when stored
            continue
        claude = log.tag_names if log.status == TaggedLog.Status.TAGGED else None
        review = review_of(
            current=row.tags,
            source_tags=log.source_tags,
            human_tags=log.human_tags,
            claude_tags=claude,
            taggable=taggable,
            reviewed_tag=reviewed_tag,
        )
        source_tags = sorted(set(row.tags) & taggable)
        if review is None and log.source_tags == source_tags:
            continue
        log.source_tags = source_tags
        if review is not None:
            log.human_tags = review.tags
            log.human_changes = {"added": review.added, "removed": review.removed}
            log.reviewed_at = now
            log.reviewed_by = reviewer(row.metadata)
            if review.added or review.removed or claude is None:
                counts.corrections += 1
            else:
                counts.confirmations += 1
            logger.info(
                "human_label_recorded",
                log_id=log.log_id,
                tags=review.tags,
                added=review.added,
                removed=review.removed,
            )
        changed.append(log)
    with transaction.atomic():
        TaggedLog.objects.bulk_update(
            changed, ["source_tags", "human_tags", "human_changes", "reviewed_at", "reviewed_by"]
        )
    return counts
