"""tag_logs from top to bottom: each stage in its own module, all of them reading one ``TaggingRun``.

1. The project and its taggable tags (none: nothing to do).
2. The window and the queue (``fetch``, ``queue``); a dry run prices them and stops (``dry_run``).
3. The window's logs stored as pending (``fetch.ingest``).
4. Message Batches earlier runs left open, settled in either mode (``batch_mode``).
5. The queue sent: as batches (``batch_mode``) or now (``interactive``), unless the settled batches showed
   a wrong setup, when anything sent would fail the same way.
6. The counts into the report and the run record (``finish``).
"""

import time
from collections.abc import Callable

import structlog
from django.utils import timezone

from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.clients.claude import ClaudeClient
from braintrust_ops.clients.claude_batches import BatchClient
from braintrust_ops.conf import OpsConfig
from braintrust_ops.models import CommandRun
from braintrust_ops.printable import printable
from braintrust_ops.provenance import tagset_fingerprint
from braintrust_ops.services.log_sync import newer_xact
from braintrust_ops.services.tagging import dry_run
from braintrust_ops.services.tagging.batch_mode import earlier_batches_settle, queue_submit
from braintrust_ops.services.tagging.batches import has_unsettled, still_open
from braintrust_ops.services.tagging.cost import billed_cost
from braintrust_ops.services.tagging.fetch import ingest, newest_xact_seen, tagging_window
from braintrust_ops.services.tagging.interactive import queue_send
from braintrust_ops.services.tagging.options import TaggingOptions
from braintrust_ops.services.tagging.quality import agreement_measure
from braintrust_ops.services.tagging.queue import count_own, count_stale, given_up, queue_queryset
from braintrust_ops.services.tagging.report import TaggingReport
from braintrust_ops.services.tagging.state import TaggingRun
from braintrust_ops.services.tagging.write_back import count_to_write, labels_write_back
from braintrust_ops.stopping import StopRequest
from braintrust_ops.taggable_tags import RefusedTag, TaggableTag, select_taggable_tags
from braintrust_ops.tagging_prompt import build_system_prompt

logger = structlog.get_logger(__name__)


def logs_tag(
    *,
    options: TaggingOptions,
    config: OpsConfig,
    braintrust: BraintrustClient,
    claude_factory: Callable[..., ClaudeClient] | None,
    run: CommandRun | None,
    stop: StopRequest | None = None,
    interactive: bool = False,
    batch_factory: Callable[[], BatchClient] | None = None,
) -> TaggingReport:
    """Tag the queue. ``run`` is None only for a dry run, which writes nothing anywhere."""
    started = time.monotonic()
    report = TaggingReport(dry_run=options.dry_run, shard=str(options.shard or ""))
    project_id = config.project_id
    braintrust.get_project(project_id)  # a mistyped id fails here, not as "no taggable tags"
    tags = _taggable_tags(braintrust, project_id, report)
    if not tags:
        logger.info("no_taggable_tags", project_id=project_id)
        report.elapsed_seconds = round(time.monotonic() - started, 3)
        return report

    tagging = _prepare(
        options=options,
        config=config,
        braintrust=braintrust,
        claude_factory=claude_factory,
        batch_factory=batch_factory,
        record=run,
        stop=stop or StopRequest(),
        interactive=interactive,
        report=report,
        started=started,
        tags=tags,
    )
    if options.dry_run:
        dry_run.queue_price(tagging)
        if config.write_back:
            report.write_back_pending = count_to_write(options.shard)
        report.agreement = [row.as_dict() for row in agreement_measure(tagging.allowed)]
        tagging.clock_out()
        return report

    ingest(tagging)
    # Batches left open by earlier runs are settled in either mode, so switching modes strands no log.
    settles = batch_factory is not None and (report.batch_mode or has_unsettled(options.shard))
    batch_client = batch_factory() if batch_factory is not None and settles else None
    try:
        if batch_client is not None:
            earlier_batches_settle(tagging, batch_client)
        # The queue holds the window's new logs too, stored just now: they are not a backlog of earlier runs.
        report.backlog = max(
            0, count_own(tagging.queued.values_list("log_id", flat=True), tagging.shard) - report.new_logs
        )
        tagging.collected = (tagging.tally.sent, tagging.tally.service_failures)  # what settling stored
        if tagging.tally.setup_error:
            pass  # the batches' results showed a wrong setup: anything sent now would fail the same way
        elif report.batch_mode and batch_client is not None:
            queue_submit(tagging, batch_client)
        else:
            queue_send(tagging)
    finally:
        if batch_client is not None:
            batch_client.close()
    if config.write_back and not tagging.stop.is_set():
        _labels_write_back(tagging)
    _finish(tagging)
    return report


def _labels_write_back(run: TaggingRun) -> None:
    """This run's labels, and any an earlier run could not write, onto their source logs (write_back)."""
    written = labels_write_back(braintrust=run.braintrust, config=run.config, shard=run.shard, stop=run.stop)
    report = run.report
    report.written_back, report.write_back_unchanged = written.written, written.unchanged
    report.write_back_requests, report.write_back_refused = written.requests, written.refused
    report.write_back_pending, report.write_back_problem = written.pending, written.problem


def _prepare(
    *, options: TaggingOptions, config: OpsConfig, report: TaggingReport, tags: list[TaggableTag], **parts
) -> TaggingRun:
    """The run's window, pages and queue, before anything is read or stored."""
    tagset = tagset_fingerprint(tags)
    report.tagset_fingerprint = tagset
    report.batch_mode = options.batch or config.tagging_batch
    report.write_back = config.write_back
    now = timezone.now()
    window = tagging_window(options=options, config=config, now=now)
    report.window_start, report.window_end = window.since, window.until or now
    report.after_xact_id = window.after_xact_id or ""
    braintrust: BraintrustClient = parts["braintrust"]
    pages = braintrust.log_pages(
        project_id=config.project_id, since=window.since, until=window.until, after_xact_id=window.after_xact_id
    )
    queued = queue_queryset(options=options, config=config, window=window, tagset=tagset, now=now).only(
        "pk", "log_id", "logged_at", "input", "output"
    )
    count_stale(report, tagset, config, options.shard)
    if report.stale_tagged:
        logger.info("stale_labels", count=report.stale_tagged, tagset=tagset, retag_stale=options.retag_stale)
    return TaggingRun(
        options=options,
        config=config,
        report=report,
        tags=tags,
        tagset=tagset,
        system_prompt=build_system_prompt(tags),
        now=now,
        window=window,
        pages=pages,
        queued=queued,
        **parts,
    )


def _finish(run: TaggingRun) -> None:
    """The stages' counts into the report, and the window and watermark into the run record."""
    report, tally, batches = run.report, run.tally, run.batches
    for name in (
        "sent",
        "tagged",
        "no_tag_applied",
        "failed",
        "will_retry",
        "service_failures",
        "setup_failures",
        "setup_error",
        "dropped_tags",
        "input_tokens",
        "output_tokens",
        "outage",
    ):
        setattr(report, name, getattr(tally, name))
    # In batch mode every result is a batch's.
    collected = (tally.sent, tally.service_failures) if report.batch_mode else run.collected
    report.collected, report.collected_service_failures = collected
    # A batch's logs are not "not sent": they wait in the batch, and a later run collects them.
    report.not_sent = 0 if report.batch_mode else report.to_send - (report.sent - report.collected)
    report.per_tag = dict(sorted(tally.per_tag.items()))
    report.batches_submitted, report.batch_requests_submitted = batches.submitted, batches.requests_submitted
    report.batches_collected = batches.collected
    report.batches_recovered, report.batches_abandoned = batches.recovered, batches.abandoned
    report.batch_outcomes = dict(sorted(batches.outcomes.items()))
    report.batch_input_tokens, report.batch_output_tokens = batches.input_tokens, batches.output_tokens
    report.estimated_cost_usd = billed_cost(
        run.config,
        report.input_tokens,
        report.output_tokens,
        batch_input=batches.input_tokens,
        batch_output=batches.output_tokens,
    )
    report.agreement = [row.as_dict() for row in agreement_measure(run.allowed)]
    count_stale(report, run.tagset, run.config, run.shard)  # again: what this run relabelled is no longer stale
    report.batches_open = still_open(run.shard)
    report.given_up = given_up(run.config, run.shard)
    run.clock_out()
    record, window = run.record, run.window
    if record is not None:
        record.window_start, record.window_end = report.window_start, report.window_end
        # The newest log `created` this run saw: the start of a later run only when no watermark exists.
        record.high_water_mark = run.counts.newest_created or window.since
        if window.incremental:
            # Every row seen counts, stored or refused: the next run starts after all of them.
            record.xact_watermark = newer_xact(newest_xact_seen(run.counts, run.pages), window.after_xact_id) or ""
    logger.info("logs_tagged", **{k: v for k, v in report.as_counters().items() if k != "per_tag"})
    if tally.interrupted:
        interrupted = run.stop.interrupted(
            f"stopped dispatching; {report.sent - report.collected} logs were sent and stored, {report.not_sent} stay "
            "queued"
        )
        interrupted.report = report
        raise interrupted


def _taggable_tags(braintrust: BraintrustClient, project_id: str, report: TaggingReport) -> list[TaggableTag]:
    refused: list[RefusedTag] = []
    tags = select_taggable_tags(braintrust.list_project_tags(project_id), refused)
    for tag in refused:
        logger.warning("taggable_tag_refused", tag=printable(tag.name), reason=tag.reason)
        report.refused_tags.append(f"{tag.name!r}: {tag.reason}")
    report.taggable_tags = len(tags)
    return tags
