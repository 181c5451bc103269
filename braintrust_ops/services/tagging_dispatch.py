"""The tagging loop: the queue's logs sent to Claude on worker threads, each result stored as it arrives.

Only the main thread touches the database, so a crash loses at most the calls in flight and SQLite
never sees two writers. The loop stops dispatching when the run is asked to stop (a signal), when
Claude looks down (``OutageBreaker``) or when the setup is wrong (a refused key, an unknown model);
it then gives the calls in flight the grace period to finish, stores what finished, and leaves.

What a failure costs a log (SPEC.md, defect 4 and the outage nights):
- the service failing (connection, time-out, 5xx, 529, 429 left after retries): nothing; the log
  stays as it was and the next run sends it again;
- the log's own fault (a 400 on its content, an unusable reply): one attempt, up to the limit.
"""

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypedDict

import structlog
from anthropic.types import ToolParam
from django.db import transaction
from django.utils import timezone

from braintrust_ops.clients.claude import ClaudeClient, LogRefused, RunStopping, ToolReply
from braintrust_ops.conf import without_secrets
from braintrust_ops.exceptions import PermanentServiceError, RemoteServiceError
from braintrust_ops.models import CommandRun, LogTag, TaggedLog
from braintrust_ops.outage_breaker import OutageBreaker
from braintrust_ops.stopping import StopRequest
from braintrust_ops.tagging_prompt import PROMPT_VERSION, UnusableReply, validate_reply
from braintrust_ops.worker_pool import WorkerPool

logger = structlog.get_logger(__name__)

TAGGED, LOG_FAULT, SERVICE_FAILURE = "tagged", "log_fault", "service_failure"
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Job:
    pk: int | None  # None only for a dry run's log not stored yet, which is counted, never sent
    log_id: str
    user_text: str


@dataclass(frozen=True)
class Result:
    job: Job
    kind: str
    tags: list[str] | None = None
    dropped: list[str] = field(default_factory=list)
    error: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


class _Usage(TypedDict):
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Call:
    """What every call of the run shares."""

    claude: ClaudeClient
    system_prompt: str
    tool: ToolParam
    allowed: list[str]
    tagset: str


def tag_one(job: Job, call: Call) -> Result:
    """Runs on a worker thread: no database access here. Raises RunStopping (the run is stopping: the
    log stays as it was) and the errors that stop the run (a refused key, an unknown model)."""
    try:
        reply = call.claude.call_tool(system=call.system_prompt, user_text=job.user_text, tool=call.tool)
    except LogRefused as exc:
        return Result(job=job, kind=LOG_FAULT, error=str(exc))
    except PermanentServiceError:
        # A refused key, an unknown model, any other request the service refuses for the run's setup:
        # every other call would fail the same way. Stopped here, on the worker, so that no queued call
        # starts before the main thread hears of it.
        call.claude.stop.set()
        raise
    except RemoteServiceError as exc:
        return Result(job=job, kind=SERVICE_FAILURE, error=str(exc))
    return result_from_reply(job, reply, call.allowed)


def result_from_reply(job: Job, reply: ToolReply, allowed: list[str]) -> Result:
    """What Claude's answer means for the log, the same for a call made now and a batch's result."""
    usage: _Usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
    if reply.stop_reason == "max_tokens":
        return Result(job=job, kind=LOG_FAULT, error="Claude's reply was cut off at max_tokens", **usage)
    try:
        validated = validate_reply(reply.tool_input, allowed)
    except UnusableReply as exc:
        return Result(job=job, kind=LOG_FAULT, error=f"unusable reply from Claude: {exc}", **usage)
    return Result(job=job, kind=TAGGED, tags=validated.tags, dropped=validated.dropped, **usage)


def store_result(
    result: Result, *, run: CommandRun | None, model: str, tagset: str, prompt_version: str = PROMPT_VERSION
) -> TaggedLog:
    """Store one result: the label with what produced it (model, prompt, tag set), or the failure. A log
    that was waiting in a Message Batch is released from it either way."""
    if result.job.pk is None:
        raise ValueError(f"a dry run's job (log {result.job.log_id}) has no stored log to record its result on")
    with transaction.atomic():
        log = TaggedLog.objects.select_for_update().get(pk=result.job.pk)
        log.last_run = run
        log.batch = None
        if result.input_tokens:
            log.input_tokens, log.output_tokens = result.input_tokens, result.output_tokens
        if result.kind == SERVICE_FAILURE:
            # Says nothing about the log: its status and attempts stay as they were.
            log.last_error = without_secrets(result.error)[:2000]
            log.save()
            return log
        log.attempts += 1
        if result.kind == LOG_FAULT:
            # A failure is never stored as "no tags". Under --retag an earlier label is kept.
            if log.status != TaggedLog.Status.TAGGED:
                log.status = TaggedLog.Status.FAILED
            else:
                log.relabel_failures += 1
            log.last_error = without_secrets(result.error)[:2000]
            log.save()
            return log
        log.status = TaggedLog.Status.TAGGED
        log.relabel_failures = 0  # a new label: relabelling it gets its own TAGGING_MAX_ATTEMPTS tries
        log.last_error = ""
        log.model = model
        log.prompt_version = prompt_version
        log.tagset_fingerprint = tagset
        log.tagged_at = timezone.now()
        log.rejected_tags = result.dropped
        log.save()
        LogTag.objects.filter(tagged_log=log).delete()
        LogTag.objects.bulk_create([LogTag(tagged_log=log, name=name) for name in result.tags or []])
        return log


@dataclass
class Tally:
    """What the loop did, for the run's report."""

    sent: int = 0
    tagged: int = 0
    no_tag_applied: int = 0
    failed: int = 0
    service_failures: int = 0
    will_retry: int = 0
    dropped_tags: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    per_tag: Counter = field(default_factory=Counter)
    outage: str = ""
    interrupted: bool = False

    @property
    def stopped_early(self) -> bool:
        return bool(self.outage) or self.interrupted

    def add(self, result: Result, log: TaggedLog, *, max_attempts: int) -> None:
        """Count a stored result, and say what it cost the log."""
        self.sent += 1
        self.input_tokens += result.input_tokens
        self.output_tokens += result.output_tokens
        if result.kind == SERVICE_FAILURE:
            self.service_failures += 1
            logger.warning("log_tagging_failed", log_id=result.job.log_id, error=result.error, cost_an_attempt=False)
        elif result.kind == LOG_FAULT:
            self.failed += 1
            # Queued again only while failed with attempts left; a failed --retag keeps its label and is not.
            retry = log.status == TaggedLog.Status.FAILED and log.attempts < max_attempts
            self.will_retry += retry
            logger.warning(
                "log_tagging_failed",
                log_id=result.job.log_id,
                error=result.error,
                cost_an_attempt=True,
                will_retry=retry,
            )
        else:
            self.dropped_tags += len(result.dropped)
            if result.tags:
                self.tagged += 1
                self.per_tag.update(result.tags)
            else:
                self.no_tag_applied += 1


class Dispatcher:
    def __init__(
        self,
        *,
        call: Call,
        run: CommandRun | None,
        concurrency: int,
        max_attempts: int,
        breaker: OutageBreaker,
        stop: StopRequest,
        grace_seconds: float,
        progress=None,
        tally: Tally | None = None,
    ):
        self.call = call
        self.run = run
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.breaker = breaker
        self.stop = stop
        self.grace_seconds = grace_seconds
        self.progress = progress
        self.tally = tally if tally is not None else Tally()

    def run_queue(self, jobs: Iterator[Job]) -> Tally:
        pool = WorkerPool(lambda job: tag_one(job, self.call), workers=self.concurrency, name="claude")
        fatal: BaseException | None = None
        deadline: float | None = None
        exhausted = False
        try:
            with self.stop.draining():
                while True:
                    if deadline is None and (self.stop.is_set() or self.breaker.open or fatal is not None):
                        # Stop dispatching: calls not started stay as they were, those in flight get the grace.
                        deadline = time.monotonic() + self.grace_seconds
                        self.call.claude.stop.set()
                        pool.drop_queued()
                    while deadline is None and not exhausted and pool.in_flight < self.concurrency * 2:
                        job = next(jobs, None)
                        if job is None:
                            exhausted = True
                        else:
                            pool.submit(job)
                    if pool.in_flight == 0:
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        # Store what finished; the calls still in flight are abandoned (they stored nothing).
                        while (finished := pool.next_result(0)) is not None:
                            self._handle(finished)
                        break
                    finished = pool.next_result(POLL_SECONDS)
                    if finished is not None:
                        fatal = self._handle(finished) or fatal
        finally:
            pool.close()
            self.call.claude.stop.set()
        if fatal is not None:
            raise fatal
        self.tally.interrupted = self.stop.is_set()
        if self.breaker.open:
            self.tally.outage = (
                f"{self.breaker.in_a_row} calls in a row failed after retries, the last with: "
                f"{self.breaker.reason.rstrip('.')}"
            )
        return self.tally

    def _handle(self, finished) -> BaseException | None:
        """Store a finished call's result; return the error that must stop the run, if it raised one."""
        _job, result, error = finished
        if isinstance(error, RunStopping):
            return None
        if error is not None:
            return error
        self._settle(result)
        return None

    def _settle(self, result: Result) -> None:
        log = store_result(result, run=self.run, model=self.call.claude.model, tagset=self.call.tagset)
        self.tally.add(result, log, max_attempts=self.max_attempts)
        if result.kind == SERVICE_FAILURE:
            self.breaker.service_failure(result.error)
        else:
            self.breaker.success()  # the service answered
        if self.progress is not None:
            self.progress.step(self.tally)
