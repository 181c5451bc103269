"""tag_logs: label the chatbot's new logs with Claude.

The steps: the taggable tags; the window (everything ingested since the last successful run, or a
backfill); the window's logs stored as pending; the queue (those and the backlog of earlier runs,
within the attempt limit and the run's budget); the queue sent to Claude (``tagging_dispatch``). The
dry run walks the same window and the same queue, and writes nothing.
"""

import heapq
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import structlog
from django.db.models import Q
from django.utils import timezone

from braintrust_ops.btql_query import is_xact_id
from braintrust_ops.clients.braintrust import BraintrustClient, LogPages
from braintrust_ops.clients.claude import ClaudeClient, tool_params
from braintrust_ops.clients.claude_batches import BatchClient
from braintrust_ops.conf import OpsConfig
from braintrust_ops.cost_estimate import expected_output_tokens, fixed_input_tokens, text_tokens
from braintrust_ops.exceptions import BraintrustOpsError, TransientServiceError
from braintrust_ops.models import CommandRun, TaggedLog
from braintrust_ops.outage_breaker import OutageBreaker
from braintrust_ops.printable import printable
from braintrust_ops.provenance import tagset_fingerprint
from braintrust_ops.rate_limiter import RateLimiter
from braintrust_ops.services.log_sync import (
    MAX_REFUSED_LISTED,
    FetchCounts,
    LogRow,
    LogWindow,
    clean_rows,
    incremental_window,
    logs_store,
    newer_xact,
)
from braintrust_ops.services.tagging_batches import (
    BatchCounts,
    BatchSpec,
    batches_settle,
    batches_submit,
    batches_wait,
    has_unsettled,
    still_open,
)
from braintrust_ops.services.tagging_dispatch import Call, Dispatcher, Job, Tally
from braintrust_ops.services.tagging_setup import suspects_judge
from braintrust_ops.setup_advice import settings_to_check
from braintrust_ops.shards import Shard
from braintrust_ops.stopping import StopRequest
from braintrust_ops.storable import original_json
from braintrust_ops.taggable_tags import RefusedTag, TaggableTag, select_taggable_tags
from braintrust_ops.tagging_prompt import PROMPT_VERSION, build_system_prompt, build_tool, build_user_message

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TaggingOptions:
    since: datetime | None = None
    until: datetime | None = None
    hours: int | None = None
    retag: bool = False
    dry_run: bool = False
    limit: int | None = None
    concurrency: int | None = None
    shard: Shard | None = None
    #: send the queue as Message Batches (half the price; a later run, or --wait, collects the results)
    batch: bool = False
    #: minutes to wait for this run's batches to end and collect them (batch mode)
    wait_minutes: float | None = None
    #: label again, oldest first, the logs labelled under another taggable tag set
    retag_stale: bool = False


@dataclass
class TaggingReport:
    window_start: datetime | None = None
    window_end: datetime | None = None
    #: the default window: logs ingested after this _xact_id (the last successful run's watermark)
    after_xact_id: str = ""
    taggable_tags: int = 0
    #: marked tags left out, "name: why" (a name too long to store, a control character)
    refused_tags: list[str] = field(default_factory=list)
    #: "I/N" when the run took one shard of the logs
    shard: str = ""
    fetched: int = 0
    #: logs of the window left to the other shards' runs
    other_shards: int = 0
    without_id: int = 0
    duplicates: int = 0
    #: rows that cannot be stored (an over-long id, JSON nested too deep, one the database refused)
    refused: int = 0
    #: "id: why" of the refused rows (the first MAX_REFUSED_LISTED), for the run record and the admin
    refused_logs: list[str] = field(default_factory=list)
    new_logs: int = 0
    already_tagged: int = 0
    #: logs of earlier runs still to tag (pending, or failed with attempts left) that this run queued
    backlog: int = 0
    to_send: int = 0
    #: this run's Claude calls, and the results it collected from earlier runs' Message Batches
    sent: int = 0
    #: of ``sent`` and ``service_failures``, those collected from batches (not sent by this run)
    collected: int = 0
    collected_service_failures: int = 0
    tagged: int = 0
    no_tag_applied: int = 0
    #: logs whose own request or reply failed (a 400 on its content, an unusable reply): one attempt used
    failed: int = 0
    #: of those, how many the next run retries
    will_retry: int = 0
    #: calls the service failed after its retries (5xx, 529, time-outs, 429s): no attempt used
    service_failures: int = 0
    #: logs failed alike, with a short harmless request too, or not judged before the run stopped: the run's
    #: setup's fault (a model without strict tool use, a max_tokens the model refuses), so no attempt used
    setup_failures: int = 0
    #: the error a wrong setup gave every request ("" when none was found): the run stopped sending
    setup_error: str = ""
    #: queued logs not sent because the run stopped (an outage, a signal): they stay as they were
    not_sent: int = 0
    #: logs at the attempt limit, never sent again (all of them, not only this run's)
    given_up: int = 0
    over_budget: int = 0
    dropped_tags: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    #: 429s the shared rate limiter saw (every attempt counts)
    rate_limited: int = 0
    #: the queue's input tokens, estimated (cost_estimate): its logs, and each request's system prompt, tool
    #: definition and Anthropic's tool use system prompt
    estimated_input_tokens: int = 0
    #: the dry run's: the output tokens expected (a reply of the most, and longest, tags a log), and at most
    #: (every reply running to max_tokens)
    estimated_output_tokens: int = 0
    estimated_output_tokens_max: int = 0
    #: the dry run's estimate of the queue's price (expected output), and its bound; a real run's price of the
    #: tokens Anthropic billed
    estimated_cost_usd: str = "0.00"
    estimated_cost_max_usd: str = "0.00"
    per_tag: dict[str, int] = field(default_factory=dict)
    #: the taggable tag set this run labels with (provenance.tagset_fingerprint)
    tagset_fingerprint: str = ""
    #: stored labels made under another tag set (or before sets were recorded): --retag-stale redoes them
    stale_tagged: int = 0
    #: of those, the ones whose relabelling failed on its own TAGGING_MAX_ATTEMPTS times: they keep their label
    stale_given_up: int = 0
    batch_mode: bool = False
    batches_submitted: int = 0
    batch_requests_submitted: int = 0
    batches_collected: int = 0
    #: this shard's batches still processing (or not yet confirmed) when the run ended
    batches_open: int = 0
    batches_recovered: int = 0
    batches_abandoned: int = 0
    #: collected batch results by type: succeeded, errored, expired, canceled
    batch_outcomes: dict[str, int] = field(default_factory=dict)
    #: of input_tokens and output_tokens, those of batch results (billed at the batch price)
    batch_input_tokens: int = 0
    batch_output_tokens: int = 0
    #: why the open batches could not be settled this run (the rest of the run went on)
    batch_problem: str = ""
    #: why the run stopped sending early: Claude looked down
    outage: str = ""
    elapsed_seconds: float = 0.0
    dry_run: bool = False

    @property
    def failure_rate(self) -> float:
        return (self.failed + self.service_failures + self.setup_failures) / self.sent if self.sent else 0.0

    def as_counters(self) -> dict:
        counters = asdict(self)
        for key in ("window_start", "window_end"):
            counters[key] = counters[key].isoformat() if counters[key] else None
        return counters

    def problem(self, config: OpsConfig) -> str:
        """tag_logs' success rule: "" when it did its work, else what went wrong and what happens next."""
        return " ".join(part for part in (self._tagging_problem(config), self.batch_problem) if part)

    def _tagging_problem(self, config: OpsConfig) -> str:
        if self.setup_error:
            return (
                f"Anthropic answered every log with the same error, and a short harmless request too: "
                f"{self.setup_error.rstrip('.')}. The run's setup is at fault, not the logs: it stopped sending, no "
                f"attempt was used, and the {self.setup_failures + self.not_sent} logs not tagged stay queued. Check "
                f"{settings_to_check(self.setup_error, config)}, then run tag_logs again."
            )
        if self.outage:
            return (
                f"Anthropic looks unavailable: {self.outage}. Stopped sending after {self.sent - self.collected} of "
                f"{self.to_send} logs; the {self.not_sent + self.service_failures - self.collected_service_failures} "
                "not tagged stay queued, no attempt used, "
                "and the next run sends them. Check status.anthropic.com."
            )
        if not self.sent or self.failure_rate <= config.tagging_failure_threshold:
            return ""
        parts = []
        if self.service_failures:
            why = "Anthropic kept failing"
            if self.batch_outcomes.get("expired") or self.batch_outcomes.get("canceled"):
                why = "Anthropic failed them, or their Message Batch expired or was canceled"
            parts.append(f"{self.service_failures} because {why} (no attempt used: the next run sends them)")
        if self.setup_failures:
            parts.append(
                f"{self.setup_failures} with the same error, whose cause could not be told (no attempt used: the "
                "next run sends them)"
            )
        if self.failed:
            retry = f"{self.will_retry} will be retried by the next run" if self.will_retry else "none will be retried"
            gave_up = self.failed - self.will_retry
            parts.append(
                f"{self.failed} on their own (a refused request or an unusable reply): {retry}"
                + (f", {gave_up} reached the attempt limit and will not be" if gave_up else "")
            )
        failures = self.failed + self.service_failures + self.setup_failures
        return (
            f"{failures} of {self.sent} logs failed to tag ({self.failure_rate:.0%}, above "
            f"the {config.tagging_failure_threshold:.0%} threshold): " + "; ".join(parts) + ". See their errors in "
            "the admin (Tagged logs)."
        )


def tagging_window(*, options: TaggingOptions, config: OpsConfig, now: datetime) -> LogWindow:
    """--since/--until/--hours: a backfill by `created`. Otherwise everything ingested since the last
    successful run (``incremental_window``)."""
    if options.since or options.until or options.hours:
        end = options.until or now
        start = options.since or end - timedelta(hours=options.hours or config.tagging_default_hours)
        if start >= end:
            raise BraintrustOpsError(
                f"the window is empty: it starts at {start.isoformat()} and ends at {end.isoformat()}"
            )
        return LogWindow(since=start, until=end)
    if options.retag:
        raise BraintrustOpsError("--retag needs --hours or --since: say which logs to label again.")
    return incremental_window(
        now=now,
        default_hours=config.tagging_default_hours,
        overlap_hours=config.tagging_overlap_hours,
        lookback_days=config.retention_days,
        shard=options.shard,
    )


def _queue_queryset(*, options: TaggingOptions, config: OpsConfig, window: LogWindow, tagset: str, now: datetime):
    """The stored logs a run sends, oldest first: pending, or failed with attempts left; under --retag, the
    window's too; under --retag-stale, the labels made under another tag set, within the retention. Never
    a log whose request waits in an open Message Batch."""
    queued = Q(status=TaggedLog.Status.PENDING) | Q(
        status=TaggedLog.Status.FAILED, attempts__lt=config.tagging_max_attempts
    )
    if options.retag:
        queued |= Q(logged_at__gte=window.since, logged_at__lt=window.until)
    if options.retag_stale:
        # Capped like every other try: a label whose relabelling keeps failing on its own keeps its label.
        queued |= (
            _stale(tagset)
            & Q(relabel_failures__lt=config.tagging_max_attempts)
            & Q(logged_at__gte=now - timedelta(days=config.retention_days))
        )
    return TaggedLog.objects.filter(queued, batch__isnull=True).order_by("logged_at", "pk")


def _stale(tagset: str) -> Q:
    return Q(status=TaggedLog.Status.TAGGED) & ~Q(tagset_fingerprint=tagset)


def _own(rows: Iterable, shard: Shard | None) -> Iterator:
    return iter(rows) if shard is None else (row for row in rows if shard.owns(row.log_id))


def _count_own(log_ids, shard: Shard | None) -> int:
    """How many of these stored logs are this run's: a count in the database, or over the ids for a shard."""
    if shard is None:
        return log_ids.count()
    return sum(1 for log_id in log_ids.iterator() if shard.owns(log_id))


def _count_stale(report: "TaggingReport", tagset: str, config: OpsConfig, shard: Shard | None) -> None:
    """How many stored labels are stale, and how many of those --retag-stale no longer tries (at the cap)."""
    stale = TaggedLog.objects.filter(_stale(tagset))
    report.stale_tagged = _count_own(stale.values_list("log_id", flat=True), shard)
    at_cap = stale.filter(relabel_failures__gte=config.tagging_max_attempts)
    report.stale_given_up = _count_own(at_cap.values_list("log_id", flat=True), shard) if report.stale_tagged else 0


def _given_up(config: OpsConfig, shard: Shard | None) -> int:
    ids = TaggedLog.objects.filter(
        status=TaggedLog.Status.FAILED, attempts__gte=config.tagging_max_attempts
    ).values_list("log_id", flat=True)
    return _count_own(ids, shard)


def _fixed_tokens(*, system_prompt: str, tags: list[TaggableTag], config: OpsConfig) -> int:
    """The input tokens each of the run's requests carries besides its log (cost_estimate)."""
    tool = build_tool(tags, strict=config.claude_strict_tools)
    return fixed_input_tokens(system_prompt=system_prompt, tool=tool, model=config.tagging_model)


def _jobs(
    candidates: Iterable, *, fixed_tokens: int, config: OpsConfig, options: TaggingOptions, report: TaggingReport
) -> Generator[Job, None, None]:  # a generator, which _send closes early
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


class _Progress:
    """A tqdm bar for a person at a terminal; a structured event every few seconds for the CronJob."""

    def __init__(self, *, interactive: bool, total: int | None = None, interval: float = 5.0):
        self.interval = interval
        self._bar = None
        self._last = time.monotonic()
        if interactive:
            from tqdm import tqdm

            self._bar = tqdm(unit="log", desc="tagging", total=total)

    def step(self, tally: Tally) -> None:
        if self._bar is not None:
            self._bar.update(1)
        elif time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            logger.info("tagging_progress", sent=tally.sent, tagged=tally.tagged, failed=tally.failed)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _price(config: OpsConfig, input_tokens: int, output_tokens: int, *, batch: bool = False) -> Decimal:
    cost = (
        Decimal(input_tokens) * config.claude_input_price_per_mtok
        + Decimal(output_tokens) * config.claude_output_price_per_mtok
    ) / Decimal(1_000_000)
    return cost * config.claude_batch_discount if batch else cost


def _estimate_cost(report: TaggingReport, tags: list[TaggableTag], config: OpsConfig) -> None:
    """The dry run's price of its queue: the input estimated, and the output expected of a reply with the most
    and longest tags, or, as an upper bound, every reply running to max_tokens."""
    expected = min(expected_output_tokens([tag.name for tag in tags]), config.claude_max_output_tokens)
    report.estimated_output_tokens = report.to_send * expected
    report.estimated_output_tokens_max = report.to_send * config.claude_max_output_tokens
    for field_name, output in (
        ("estimated_cost_usd", report.estimated_output_tokens),
        ("estimated_cost_max_usd", report.estimated_output_tokens_max),
    ):
        cost = _price(config, report.estimated_input_tokens, output, batch=report.batch_mode)
        setattr(report, field_name, f"{cost:.4f}")


def _cost(
    config: OpsConfig, input_tokens: int, output_tokens: int, *, batch_input: int = 0, batch_output: int = 0
) -> str:
    """Dollars for the run's tokens, those of batch results at the batch price."""
    cost = _price(config, input_tokens - batch_input, output_tokens - batch_output) + _price(
        config, batch_input, batch_output, batch=True
    )
    return f"{cost:.4f}"


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
    stop = stop or StopRequest()
    report = TaggingReport(dry_run=options.dry_run, shard=str(options.shard or ""))
    project_id = config.project_id
    braintrust.get_project(project_id)  # a mistyped id fails here, not as "no taggable tags"

    tags = _taggable_tags(braintrust, project_id, report)
    if not tags:
        logger.info("no_taggable_tags", project_id=project_id)
        report.elapsed_seconds = round(time.monotonic() - started, 3)
        return report

    tagset = tagset_fingerprint(tags)
    report.tagset_fingerprint = tagset
    report.batch_mode = options.batch or config.tagging_batch
    now = timezone.now()
    window = tagging_window(options=options, config=config, now=now)
    report.window_start, report.window_end = window.since, window.until or now
    report.after_xact_id = window.after_xact_id or ""
    counts = FetchCounts()
    pages = braintrust.log_pages(
        project_id=project_id, since=window.since, until=window.until, after_xact_id=window.after_xact_id
    )
    system_prompt = build_system_prompt(tags)
    queued = _queue_queryset(options=options, config=config, window=window, tagset=tagset, now=now).only(
        "pk", "log_id", "logged_at", "input", "output"
    )
    _count_stale(report, tagset, config, options.shard)
    if report.stale_tagged:
        logger.info("stale_labels", count=report.stale_tagged, tagset=tagset, retag_stale=options.retag_stale)

    if options.dry_run:
        # In the real run's order (by log time), so --limit and the budget pick the same logs.
        new_rows = sorted(_window_rows_not_stored(pages, counts, options, report), key=lambda row: row.logged_at)
        candidates = heapq.merge(
            _own(queued.iterator(chunk_size=500), options.shard), new_rows, key=lambda row: row.logged_at
        )
        report.backlog = _count_own(queued.values_list("log_id", flat=True), options.shard)
        fixed_tokens = _fixed_tokens(system_prompt=system_prompt, tags=tags, config=config)
        for _ in _jobs(candidates, fixed_tokens=fixed_tokens, config=config, options=options, report=report):
            pass
        _estimate_cost(report, tags, config)
        _fetch_counts(report, counts, pages)
        report.given_up = _given_up(config, options.shard)
        report.elapsed_seconds = round(time.monotonic() - started, 3)
        return report

    _ingest(pages, counts, options=options, run=run, report=report)
    tally, batches = Tally(), BatchCounts()
    call = _SetupCheck(claude_factory, tags=tags, tagset=tagset, system_prompt=system_prompt, config=config)
    # Batches left open by earlier runs are settled in either mode, so switching modes strands no log.
    batch_client = batch_factory() if batch_factory and (report.batch_mode or has_unsettled(options.shard)) else None
    try:
        if batch_client is not None:
            try:
                batches.add(
                    batches_settle(
                        batch_client,
                        shard=options.shard,
                        run=run,
                        max_attempts=config.tagging_max_attempts,
                        tally=tally,
                    )
                )
            except TransientServiceError as exc:
                # The batch API failing must not stop tonight's tagging: the run goes on, then fails saying why.
                logger.warning("batches_not_settled", error=str(exc))
                report.batch_problem = (
                    f"Message Batches left open by earlier runs could not be settled: {exc} Their logs stay with them; "
                    "the rest of the run went on, and the next run tries again."
                )
            _judge_batch_faults(tally, call=call)
        # The queue holds the window's new logs too, stored just now: they are not a backlog of earlier runs.
        report.backlog = max(0, _count_own(queued.values_list("log_id", flat=True), options.shard) - report.new_logs)
        collected = (tally.sent, tally.service_failures)  # what settling the earlier batches stored
        if tally.setup_error:
            pass  # the batches' results showed a wrong setup: anything sent now would fail the same way
        elif report.batch_mode and batch_client is not None:
            _submit(
                queued,
                tags=tags,
                tagset=tagset,
                system_prompt=system_prompt,
                options=options,
                config=config,
                client=batch_client,
                run=run,
                report=report,
                batches=batches,
            )
            if options.wait_minutes:
                batches_wait(
                    batch_client,
                    minutes=options.wait_minutes,
                    poll_seconds=config.claude_batch_poll_seconds,
                    shard=options.shard,
                    run=run,
                    max_attempts=config.tagging_max_attempts,
                    tally=tally,
                    counts=batches,
                )
                _judge_batch_faults(tally, call=call)
        else:
            _send(
                queued,
                tags=tags,
                tagset=tagset,
                system_prompt=system_prompt,
                options=options,
                config=config,
                claude_factory=claude_factory,
                run=run,
                stop=stop,
                interactive=interactive,
                report=report,
                tally=tally,
            )
    finally:
        if batch_client is not None:
            batch_client.close()
    _add_tally(report, tally, config, batches, collected=collected)
    _count_stale(report, tagset, config, options.shard)  # again: what this run relabelled is no longer stale
    report.batches_open = still_open(options.shard)
    report.given_up = _given_up(config, options.shard)
    report.elapsed_seconds = round(time.monotonic() - started, 3)
    if run is not None:
        run.window_start, run.window_end = report.window_start, report.window_end
        # The newest log `created` this run saw: the start of a later run only when no watermark exists.
        run.high_water_mark = counts.newest_created or window.since
        if window.incremental:
            # Every row seen counts, stored or refused: the next run starts after all of them.
            run.xact_watermark = newer_xact(_newest_xact_seen(counts, pages), window.after_xact_id) or ""
    logger.info("logs_tagged", **{k: v for k, v in report.as_counters().items() if k != "per_tag"})
    if tally.interrupted:
        interrupted = stop.interrupted(
            f"stopped dispatching; {report.sent - report.collected} logs were sent and stored, {report.not_sent} stay "
            "queued"
        )
        interrupted.report = report
        raise interrupted
    return report


@dataclass(frozen=True)
class _SetupCheck:
    """How to build the run's Call for a setup check, should a batch's results need one."""

    claude_factory: Callable[..., ClaudeClient] | None
    tags: list[TaggableTag]
    tagset: str
    system_prompt: str
    config: OpsConfig


def _judge_batch_faults(tally: Tally, *, call: _SetupCheck) -> None:
    """Batch results failing alike, in a row: one setup check decides whose fault they are (tagging_setup)."""
    if not tally.suspects or call.claude_factory is None:
        return
    claude = call.claude_factory(limiter=RateLimiter(), stop=threading.Event())
    try:
        suspects_judge(
            tally,
            Call(
                claude=claude,
                system_prompt=call.system_prompt,
                tool=build_tool(call.tags, strict=call.config.claude_strict_tools),
                allowed=[tag.name for tag in call.tags],
                tagset=call.tagset,
            ),
        )
    finally:
        claude.close()


def _taggable_tags(braintrust: BraintrustClient, project_id: str, report: TaggingReport) -> list[TaggableTag]:
    refused: list[RefusedTag] = []
    tags = select_taggable_tags(braintrust.list_project_tags(project_id), refused)
    for tag in refused:
        logger.warning("taggable_tag_refused", tag=printable(tag.name), reason=tag.reason)
        report.refused_tags.append(f"{tag.name!r}: {tag.reason}")
    report.taggable_tags = len(tags)
    return tags


def _ingest(pages: LogPages, counts: FetchCounts, *, options: TaggingOptions, run, report: TaggingReport) -> None:
    """Store the window's rows of this run's shard as pending; known logs are left as they are."""
    for rows in _own_rows(clean_rows(pages, counts), options.shard, report):
        stored = logs_store(rows, run=run)
        report.new_logs += stored.new
        report.refused += stored.unstorable
        _list_refused(report, stored.refused_logs)
        if not options.retag:
            report.already_tagged += stored.already_tagged
    _fetch_counts(report, counts, pages)


def _queue_jobs(queued, *, tags, system_prompt, config, options, report) -> Generator[Job, None, None]:
    """This run's share of the stored queue, as jobs within its budget."""
    return _jobs(
        _own(queued.iterator(chunk_size=500), options.shard),
        fixed_tokens=_fixed_tokens(system_prompt=system_prompt, tags=tags, config=config),
        config=config,
        options=options,
        report=report,
    )


def _submit(queued, *, tags, tagset, system_prompt, options, config, client, run, report, batches) -> None:
    """Batch mode: the queue, within the run's budget, submitted as Message Batches."""
    jobs = _queue_jobs(queued, tags=tags, system_prompt=system_prompt, config=config, options=options, report=report)
    tool = build_tool(tags, strict=config.claude_strict_tools)
    spec = BatchSpec(
        model=config.tagging_model,
        prompt_version=PROMPT_VERSION,
        tagset=tagset,
        allowed=[tag.name for tag in tags],
        # The very request an interactive call sends.
        params=lambda job: tool_params(
            model=config.tagging_model,
            max_tokens=config.claude_max_output_tokens,
            system=system_prompt,
            user_text=job.user_text,
            tool=tool,
        ),
        max_bytes=config.claude_batch_max_bytes,
    )
    try:
        batches.add(batches_submit(jobs, client=client, spec=spec, shard=options.shard, run=run))
    finally:
        jobs.close()


def _send(
    queued, *, tags, tagset, system_prompt, options, config, claude_factory, run, stop, interactive, report, tally
) -> Tally:
    jobs = _queue_jobs(queued, tags=tags, system_prompt=system_prompt, config=config, options=options, report=report)
    # One pace for all the run's calls; the client's own stop lets the dispatcher end calls between attempts.
    claude = claude_factory(limiter=RateLimiter(), stop=threading.Event())
    progress = _Progress(interactive=interactive)
    dispatcher = Dispatcher(
        call=Call(
            claude=claude,
            system_prompt=system_prompt,
            tool=build_tool(tags, strict=config.claude_strict_tools),
            allowed=[tag.name for tag in tags],
            tagset=tagset,
        ),
        run=run,
        concurrency=options.concurrency or config.tagging_concurrency,
        max_attempts=config.tagging_max_attempts,
        breaker=OutageBreaker(threshold=config.claude_outage_threshold),
        stop=stop,
        grace_seconds=config.shutdown_grace_seconds,
        progress=progress,
        tally=tally,
    )
    try:
        tally = dispatcher.run_queue(jobs)
        if tally.stopped_early:
            for _ in jobs:  # count the rest of the queue, so the report says what stays queued
                pass
        return tally
    finally:
        # Close the database cursor behind the job queue now, while the connection is open; left to the
        # garbage collector it fails after Django has closed the connection and hides the real error.
        jobs.close()
        progress.close()
        report.rate_limited = claude.limiter.refused
        claude.close()


def _add_tally(
    report: TaggingReport, tally: Tally, config: OpsConfig, batches: BatchCounts, *, collected: tuple[int, int]
) -> None:
    """The loop's counts into the report. ``collected``: the tally's (sent, service failures) after settling
    earlier runs' batches, before this run sent anything; in batch mode every result is a batch's."""
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
    if report.batch_mode:
        collected = (tally.sent, tally.service_failures)
    report.collected, report.collected_service_failures = collected
    # A batch's logs are not "not sent": they wait in the batch, and a later run collects them.
    report.not_sent = 0 if report.batch_mode else report.to_send - (report.sent - report.collected)
    report.per_tag = dict(sorted(tally.per_tag.items()))
    report.batches_submitted, report.batch_requests_submitted = batches.submitted, batches.requests_submitted
    report.batches_collected = batches.collected
    report.batches_recovered, report.batches_abandoned = batches.recovered, batches.abandoned
    report.batch_outcomes = dict(sorted(batches.outcomes.items()))
    report.batch_input_tokens, report.batch_output_tokens = batches.input_tokens, batches.output_tokens
    report.estimated_cost_usd = _cost(
        config,
        report.input_tokens,
        report.output_tokens,
        batch_input=batches.input_tokens,
        batch_output=batches.output_tokens,
    )


def _own_rows(pages: Iterable[list[LogRow]], shard: Shard | None, report: TaggingReport) -> Iterator[list[LogRow]]:
    """Each page's rows that belong to this run's shard (all of them without --shard)."""
    if shard is None:
        yield from pages
        return
    for rows in pages:
        own = [row for row in rows if shard.owns(row.log_id)]
        report.other_shards += len(rows) - len(own)
        yield own


def _window_rows_not_stored(pages, counts, options, report) -> Iterator[LogRow]:
    """The dry run's share of the window: the rows a real run would store as new (the stored ones are
    in the queue already, or tagged, or given up)."""
    for rows in _own_rows(clean_rows(pages, counts), options.shard, report):
        statuses = dict(
            TaggedLog.objects.filter(log_id__in=[row.log_id for row in rows]).values_list("log_id", "status")
        )
        for row in rows:
            status = statuses.get(row.log_id)
            if status is None:
                report.new_logs += 1
                yield row
            elif status == TaggedLog.Status.TAGGED and not options.retag:
                report.already_tagged += 1


def _fetch_counts(report: TaggingReport, counts: FetchCounts, pages: LogPages) -> None:
    """The fetch's counts into the report. Rows without a time are refused rows: they cannot be stored."""
    report.fetched, report.without_id = counts.fetched + pages.duplicates, counts.without_id
    report.duplicates = counts.duplicates + pages.duplicates
    report.refused += counts.refused + counts.without_created + pages.unreadable
    _list_refused(report, counts.refused_logs)
    unlisted = report.refused - len(report.refused_logs)  # past the bound, or unreadable (no id to show)
    if unlisted > 0:
        report.refused_logs.append(
            f"and {unlisted} more: their ids are in the log_refused, log_unstorable and log_row_unreadable events"
        )


def _list_refused(report: TaggingReport, entries: list[str]) -> None:
    report.refused_logs.extend(entries[: max(0, MAX_REFUSED_LISTED - len(report.refused_logs))])


def _newest_xact_seen(counts: FetchCounts, pages: LogPages) -> str | None:
    """The greatest _xact_id of every row read, the unreadable ones included: the next run starts past them."""
    newest = counts.newest_xact_id
    for xact_id in filter(is_xact_id, pages.unreadable_xact_ids):
        newest = newer_xact(newest, xact_id)
    return newest
