"""The run's queue: which stored logs it sends, in what order, and within what budget.

Pending logs, and failed ones with attempts left, oldest first; under --retag the window's too; under
--retag-stale the labels made under another tag set. Never a log whose request waits in an open Message
Batch. ``jobs`` stops at the --limit or the run's token budget; the rest stays queued for the next run.
"""

from collections.abc import Generator, Iterable, Iterator
from datetime import datetime, timedelta

from django.db.models import Q

from braintrust_ops.conf import OpsConfig
from braintrust_ops.cost_estimate import text_tokens
from braintrust_ops.models import TaggedLog
from braintrust_ops.services.log_sync import LogWindow
from braintrust_ops.services.tagging.cost import fixed_tokens
from braintrust_ops.services.tagging.dispatch import Job
from braintrust_ops.services.tagging.options import TaggingOptions
from braintrust_ops.services.tagging.report import TaggingReport
from braintrust_ops.services.tagging.state import TaggingRun
from braintrust_ops.shards import Shard
from braintrust_ops.storable import original_json
from braintrust_ops.tagging_prompt import build_user_message


def queue_queryset(*, options: TaggingOptions, config: OpsConfig, window: LogWindow, tagset: str, now: datetime):
    """The stored logs a run sends, oldest first: pending, or failed with attempts left; under --retag, the
    window's too; under --retag-stale, the labels made under another tag set, within the retention. Never
    a log whose request waits in an open Message Batch."""
    queued = Q(status=TaggedLog.Status.PENDING) | Q(
        status=TaggedLog.Status.FAILED, attempts__lt=config.tagging_max_attempts
    )
    # A log a person labelled keeps Claude's label as it was, to measure Claude against the person's.
    unreviewed = Q(human_tags__isnull=True)
    if options.retag:
        queued |= Q(logged_at__gte=window.since, logged_at__lt=window.until) & unreviewed
    if options.retag_stale:
        # Capped like every other try: a label whose relabelling keeps failing on its own keeps its label.
        queued |= (
            _stale(tagset)
            & Q(relabel_failures__lt=config.tagging_max_attempts)
            & Q(logged_at__gte=now - timedelta(days=config.retention_days))
        )
    return TaggedLog.objects.filter(queued, batch__isnull=True).order_by("logged_at", "pk")


def _stale(tagset: str) -> Q:
    """Claude's labels made under another tag set; a log a person labelled is never stale (theirs wins)."""
    return Q(status=TaggedLog.Status.TAGGED, human_tags__isnull=True) & ~Q(tagset_fingerprint=tagset)


def own(rows: Iterable, shard: Shard | None) -> Iterator:
    return iter(rows) if shard is None else (row for row in rows if shard.owns(row.log_id))


def count_own(log_ids, shard: Shard | None) -> int:
    """How many of these stored logs are this run's: a count in the database, or over the ids for a shard."""
    if shard is None:
        return log_ids.count()
    return sum(1 for log_id in log_ids.iterator() if shard.owns(log_id))


def count_stale(report: TaggingReport, tagset: str, config: OpsConfig, shard: Shard | None) -> None:
    """How many stored labels are stale, and how many of those --retag-stale no longer tries (at the cap)."""
    stale = TaggedLog.objects.filter(_stale(tagset))
    report.stale_tagged = count_own(stale.values_list("log_id", flat=True), shard)
    at_cap = stale.filter(relabel_failures__gte=config.tagging_max_attempts)
    report.stale_given_up = count_own(at_cap.values_list("log_id", flat=True), shard) if report.stale_tagged else 0


def given_up(config: OpsConfig, shard: Shard | None) -> int:
    ids = TaggedLog.objects.filter(
        status=TaggedLog.Status.FAILED, attempts__gte=config.tagging_max_attempts
    ).values_list("log_id", flat=True)
    return count_own(ids, shard)


def queue_jobs(run: TaggingRun) -> Generator[Job, None, None]:
    """This run's share of the stored queue, as jobs within its budget."""
    return jobs(
        own(run.queued.iterator(chunk_size=500), run.shard),
        fixed_tokens=fixed_tokens(run),
        config=run.config,
        options=run.options,
        report=run.report,
    )


def jobs(
    candidates: Iterable, *, fixed_tokens: int, config: OpsConfig, options: TaggingOptions, report: TaggingReport
) -> Generator[Job, None, None]:  # a generator, which the sender closes early
    """The logs to send, in order, until the --limit or the run's budget is reached; the rest is counted
    as over budget and stays queued for the next run. ``candidates`` have pk, log_id, input, output (stored:
    ``storable_json``'s encoding). A request's input tokens: ``fixed_tokens`` and its log's."""
    max_logs = min(options.limit or config.tagging_max_logs_per_run, config.tagging_max_logs_per_run)
    for count, row in enumerate(candidates):
        # Stored content is in storable's encoding: Claude reads the log as it was written.
        user_text = build_user_message(
            log_input=original_json(row.input),
            log_output=original_json(row.output),
            text_limit=config.tagging_text_limit,
        )
        estimate = fixed_tokens + text_tokens(user_text)
        if count >= max_logs or report.estimated_input_tokens + estimate > config.tagging_max_input_tokens_per_run:
            report.over_budget += 1
            continue
        report.estimated_input_tokens += estimate
        report.to_send += 1
        yield Job(pk=getattr(row, "pk", None), log_id=row.log_id, user_text=user_text)
