"""tag_logs: label the window's logs with Claude, each result committed as it arrives.

Claude calls run on a bounded thread pool; only the main thread touches the database, so a crash
loses at most the calls in flight and SQLite never sees two writers.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal

import structlog
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from braintrust_ops.clients.braintrust import BraintrustClient, LogPages
from braintrust_ops.clients.claude import ClaudeClient
from braintrust_ops.conf import OpsConfig
from braintrust_ops.exceptions import BraintrustOpsError, PermanentServiceError, RemoteServiceError
from braintrust_ops.models import CommandRun, LogTag, TaggedLog
from braintrust_ops.services.log_sync import (
    FetchCounts,
    LogRow,
    LogWindow,
    clean_rows,
    incremental_window,
    last_high_water_mark,
    logs_store,
    newer_xact,
)
from braintrust_ops.services.runs import run_finish
from braintrust_ops.shards import Shard
from braintrust_ops.taggable_tags import RefusedTag, TaggableTag, select_taggable_tags
from braintrust_ops.tagging_prompt import (
    PROMPT_VERSION,
    UnusableReply,
    build_system_prompt,
    build_tool,
    build_user_message,
    validate_reply,
)

logger = structlog.get_logger(__name__)

# Claude errors that would fail every other log the same way: stop the run instead.
RUN_STOPPING_STATUSES = (401, 403, 404)
# A rough, conservative count for the dry run and the budget: about four characters per token.
CHARS_PER_TOKEN = 4


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
    new_logs: int = 0
    already_tagged: int = 0
    to_send: int = 0
    sent: int = 0
    tagged: int = 0
    no_tag_applied: int = 0
    failed: int = 0
    permanent_failures: int = 0
    over_budget: int = 0
    dropped_tags: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_input_tokens: int = 0
    estimated_cost_usd: str = "0.00"
    per_tag: dict[str, int] = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    dry_run: bool = False

    @property
    def failure_rate(self) -> float:
        return self.failed / self.sent if self.sent else 0.0

    def as_counters(self) -> dict:
        counters = asdict(self)
        for key in ("window_start", "window_end"):
            counters[key] = counters[key].isoformat() if counters[key] else None
        return counters


@dataclass(frozen=True)
class _Job:
    pk: int | None
    log_id: str
    user_text: str


@dataclass(frozen=True)
class _Result:
    job: _Job
    tags: list[str] | None = None
    dropped: list[str] = field(default_factory=list)
    error: str = ""
    permanent: bool = False
    input_tokens: int = 0
    output_tokens: int = 0


class FailureThresholdExceeded(RemoteServiceError):
    pass


def tagging_window(*, options: TaggingOptions, config: OpsConfig, now: datetime) -> LogWindow:
    """--since/--until/--hours: a backfill by `created`. Otherwise everything ingested since the last
    successful run (``incremental_window``)."""
    if options.since or options.until or options.hours:
        end = options.until or now
        start = options.since or end - timezone.timedelta(hours=options.hours or config.tagging_default_hours)
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


def _work_queryset(*, options: TaggingOptions, config: OpsConfig, window: LogWindow):
    retryable = Q(status=TaggedLog.Status.PENDING) | Q(
        status=TaggedLog.Status.FAILED, attempts__lt=config.tagging_max_attempts
    )
    if options.retag:
        retryable |= Q(logged_at__gte=window.since, logged_at__lt=window.until)
    return TaggedLog.objects.filter(retryable).order_by("logged_at", "pk")


def _estimate_tokens(system_prompt: str, user_text: str) -> int:
    return (len(system_prompt) + len(user_text)) // CHARS_PER_TOKEN + 1


def _jobs(
    candidates: Iterable, *, system_prompt: str, config: OpsConfig, options: TaggingOptions, report: TaggingReport
) -> Iterator[_Job]:
    """The logs to send, in order, until the --limit or the run's budget is reached; the rest is counted
    as over budget and stays pending for the next run. ``candidates`` have pk, log_id, input, output."""
    max_logs = min(options.limit or config.tagging_max_logs_per_run, config.tagging_max_logs_per_run)
    for count, row in enumerate(candidates):
        user_text = build_user_message(log_input=row.input, log_output=row.output, text_limit=config.tagging_text_limit)
        estimate = _estimate_tokens(system_prompt, user_text)
        if count >= max_logs or report.estimated_input_tokens + estimate > config.tagging_max_input_tokens_per_run:
            report.over_budget += 1
            continue
        report.estimated_input_tokens += estimate
        report.to_send += 1
        yield _Job(pk=getattr(row, "pk", None), log_id=row.log_id, user_text=user_text)


def _tag_one(
    job: _Job, *, claude: ClaudeClient, system_prompt: str, tool: dict, allowed: list[str], stop: threading.Event
) -> _Result | None:
    """Runs on a worker thread: no database access here. None: the run is stopping, the log stays pending."""
    if stop.is_set():
        return None
    try:
        reply = claude.call_tool(system=system_prompt, user_text=job.user_text, tool=tool)
    except PermanentServiceError as exc:
        if exc.status in RUN_STOPPING_STATUSES:
            # Set here, not in the main thread, so a queued job cannot start before the main thread hears.
            stop.set()
            raise
        return _Result(job=job, error=str(exc), permanent=True)
    except RemoteServiceError as exc:
        return _Result(job=job, error=str(exc))
    usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
    if reply.stop_reason == "max_tokens":
        return _Result(job=job, error="Claude's reply was cut off at max_tokens", **usage)
    try:
        validated = validate_reply(reply.tool_input, allowed)
    except UnusableReply as exc:
        return _Result(job=job, error=f"unusable reply from Claude: {exc}", **usage)
    return _Result(job=job, tags=validated.tags, dropped=validated.dropped, **usage)


def _store_result(result: _Result, *, run: CommandRun | None, model: str) -> None:
    with transaction.atomic():
        log = TaggedLog.objects.select_for_update().get(pk=result.job.pk)
        log.attempts += 1
        log.last_run = run
        if result.input_tokens:
            log.input_tokens, log.output_tokens = result.input_tokens, result.output_tokens
        if result.tags is None:
            # A failure is never stored as "no tags". Under --retag an earlier label is kept.
            if log.status != TaggedLog.Status.TAGGED:
                log.status = TaggedLog.Status.FAILED
            log.last_error = result.error[:2000]
            log.save()
            return
        log.status = TaggedLog.Status.TAGGED
        log.last_error = ""
        log.model = model
        log.prompt_version = PROMPT_VERSION
        log.tagged_at = timezone.now()
        log.rejected_tags = result.dropped
        log.save()
        LogTag.objects.filter(tagged_log=log).delete()
        LogTag.objects.bulk_create([LogTag(tagged_log=log, name=name) for name in result.tags])


def _record(result: _Result, report: TaggingReport, per_tag: Counter) -> None:
    report.sent += 1
    report.input_tokens += result.input_tokens
    report.output_tokens += result.output_tokens
    if result.tags is None:
        report.failed += 1
        report.permanent_failures += result.permanent
        logger.warning("log_tagging_failed", log_id=result.job.log_id, error=result.error)
        return
    report.dropped_tags += len(result.dropped)
    if result.tags:
        report.tagged += 1
        per_tag.update(result.tags)
    else:
        report.no_tag_applied += 1


class _Progress:
    """A tqdm bar for a person at a terminal; a structured event every few seconds for the CronJob."""

    def __init__(self, *, interactive: bool, interval: float = 5.0):
        self.interactive = interactive
        self.interval = interval
        self.done = 0
        self._bar = None
        self._last = time.monotonic()
        if interactive:
            from tqdm import tqdm

            self._bar = tqdm(unit="log", desc="tagging")

    def step(self, report: TaggingReport) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            logger.info("tagging_progress", sent=report.sent, tagged=report.tagged, failed=report.failed)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _cost(config: OpsConfig, input_tokens: int, output_tokens: int) -> str:
    cost = (
        Decimal(input_tokens) * config.claude_input_price_per_mtok
        + Decimal(output_tokens) * config.claude_output_price_per_mtok
    ) / Decimal(1_000_000)
    return f"{cost:.4f}"


def logs_tag(
    *,
    options: TaggingOptions,
    config: OpsConfig,
    braintrust: BraintrustClient,
    claude_factory: Callable[[], ClaudeClient],
    run: CommandRun | None,
    interactive: bool = False,
) -> TaggingReport:
    """Tag the window's logs. ``run`` is None only for a dry run, which writes nothing anywhere."""
    started = time.monotonic()
    report = TaggingReport(dry_run=options.dry_run, shard=str(options.shard or ""))
    project_id = config.braintrust_project_id
    braintrust.get_project(project_id)  # a mistyped id fails here, not as "no taggable tags"

    refused_tags: list[RefusedTag] = []
    tags: list[TaggableTag] = select_taggable_tags(braintrust.list_project_tags(project_id), refused_tags)
    for tag in refused_tags:
        logger.warning("taggable_tag_refused", tag=tag.name, reason=tag.reason)
        report.refused_tags.append(f"{tag.name!r}: {tag.reason}")
    report.taggable_tags = len(tags)
    if not tags:
        logger.info("no_taggable_tags", project_id=project_id)
        report.window_start = None
        report.elapsed_seconds = round(time.monotonic() - started, 3)
        return report

    now = timezone.now()
    window = tagging_window(options=options, config=config, now=now)
    report.window_start, report.window_end = window.since, window.until or now
    report.after_xact_id = window.after_xact_id or ""
    counts = FetchCounts()
    pages = braintrust.log_pages(
        project_id=project_id,
        since=window.since,
        until=window.until,
        after_xact_id=window.after_xact_id,
        root_only=True,
    )
    system_prompt = build_system_prompt(tags)
    tool = build_tool(tags, strict=config.claude_strict_tools)

    if options.dry_run:
        _dry_run(pages, counts=counts, report=report, system_prompt=system_prompt, config=config, options=options)
        _fetch_counts(report, counts, pages)
        report.elapsed_seconds = round(time.monotonic() - started, 3)
        return report

    for rows in _own_rows(clean_rows(pages, counts), options.shard, report):
        stored = logs_store(rows, run=run)
        report.new_logs += stored.new
        report.refused += stored.unstorable
        if not options.retag:
            report.already_tagged += stored.already_tagged
    _fetch_counts(report, counts, pages)

    queryset = _work_queryset(options=options, config=config, window=window).only("pk", "log_id", "input", "output")
    stored_rows = queryset.iterator(chunk_size=500)
    shard = options.shard
    candidates = stored_rows if shard is None else (row for row in stored_rows if shard.owns(row.log_id))
    jobs = _jobs(candidates, system_prompt=system_prompt, config=config, options=options, report=report)
    per_tag: Counter = Counter()
    allowed = [tag.name for tag in tags]
    concurrency = options.concurrency or config.tagging_concurrency
    claude = claude_factory()
    progress = _Progress(interactive=interactive)
    stop = threading.Event()
    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="claude") as pool:
            in_flight: set[Future] = set()
            exhausted = False
            while True:
                # Keep the pool fed without materialising the whole queue: memory stays flat.
                while not exhausted and len(in_flight) < concurrency * 2:
                    job = next(jobs, None)
                    if job is None:
                        exhausted = True
                        break
                    in_flight.add(
                        pool.submit(
                            _tag_one, job, claude=claude, system_prompt=system_prompt, tool=tool, allowed=allowed, stop=stop
                        )
                    )
                if not in_flight:
                    break
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        result = future.result()
                    except PermanentServiceError:
                        # Wrong key, unknown model: every other call would fail the same way.
                        for pending in in_flight:
                            pending.cancel()
                        raise
                    if result is None:
                        continue
                    _store_result(result, run=run, model=claude.model)
                    _record(result, report, per_tag)
                    progress.step(report)
    finally:
        # Close the database cursor behind the job queue now, while the connection is open; left to the
        # garbage collector it fails after Django has closed the connection and hides the real error.
        jobs.close()
        stored_rows.close()
        progress.close()
        claude.close()

    report.per_tag = dict(sorted(per_tag.items()))
    report.estimated_cost_usd = _cost(config, report.input_tokens, report.output_tokens)
    report.elapsed_seconds = round(time.monotonic() - started, 3)
    if run is not None:
        run.window_start, run.window_end = report.window_start, report.window_end
        run.high_water_mark = max(
            filter(None, [counts.newest_created, last_high_water_mark(options.shard)]), default=window.since
        )
        if window.incremental:
            # Every row seen counts, stored or refused: the next run starts after all of them.
            run.xact_watermark = newer_xact(counts.newest_xact_id, window.after_xact_id) or ""
    logger.info("logs_tagged", **{k: v for k, v in report.as_counters().items() if k != "per_tag"})
    return report


def _own_rows(pages: Iterable[list[LogRow]], shard: Shard | None, report: TaggingReport) -> Iterator[list[LogRow]]:
    """Each page's rows that belong to this run's shard (all of them without --shard)."""
    if shard is None:
        yield from pages
        return
    for rows in pages:
        own = [row for row in rows if shard.owns(row.log_id)]
        report.other_shards += len(rows) - len(own)
        yield own


def _dry_run(pages, *, counts, report, system_prompt, config, options) -> None:
    """Count what a real run would send and estimate its tokens, writing nothing anywhere."""

    def candidates():
        for rows in _own_rows(clean_rows(pages, counts), options.shard, report):
            statuses = dict(
                TaggedLog.objects.filter(log_id__in=[row.log_id for row in rows]).values_list("log_id", "status")
            )
            for row in rows:
                if statuses.get(row.log_id) == TaggedLog.Status.TAGGED and not options.retag:
                    report.already_tagged += 1
                else:
                    yield row

    for _ in _jobs(candidates(), system_prompt=system_prompt, config=config, options=options, report=report):
        pass


def _fetch_counts(report: TaggingReport, counts: FetchCounts, pages: LogPages) -> None:
    report.fetched, report.without_id = counts.fetched + pages.duplicates, counts.without_id
    report.duplicates = counts.duplicates + pages.duplicates
    report.refused += counts.refused + pages.unreadable
    for xact_id in pages.unreadable_xact_ids:
        counts.newest_xact_id = newer_xact(counts.newest_xact_id, xact_id)


def finish_tagging_run(run: CommandRun, report: TaggingReport, config: OpsConfig) -> None:
    """Close the run record; raise when the job did not do its work, so the command exits non-zero."""
    problems = []
    if report.sent and report.failure_rate > config.tagging_failure_threshold:
        problems.append(
            f"{report.failed} of {report.sent} logs failed to tag ({report.failure_rate:.0%}, above the "
            f"{config.tagging_failure_threshold:.0%} threshold)"
        )
    if report.permanent_failures:
        problems.append(f"Anthropic rejected {report.permanent_failures} request(s) outright")
    if problems:
        message = (
            "; ".join(problems) + ". The failed logs are stored as failed and the next run retries them; "
            "see their errors in the admin (Tagged logs, status failed)."
        )
        run.high_water_mark = None
        run_finish(run, succeeded=False, counters=report.as_counters(), error=message)
        raise FailureThresholdExceeded(message, service="Anthropic")
    run_finish(run, succeeded=True, counters=report.as_counters())
