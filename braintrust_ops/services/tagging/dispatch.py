"""The tagging loop: the queue's logs sent to Claude on worker threads, each result stored as it arrives.

Only the main thread touches the database, so a crash loses at most the calls in flight and SQLite
never sees two writers. The loop stops dispatching when the run is asked to stop (a signal), when
Claude looks down (``OutageBreaker``) or when the setup is wrong (a refused key, an unknown model);
it then gives the calls in flight the grace period to finish, stores what finished, and leaves.

What a failure costs a log (SPEC.md, defect 4 and the outage nights):
- the service failing (connection, time-out, 5xx, 529, 429 left after retries): nothing; the log
  stays as it was and the next run sends it again;
- the log's own fault (a 400 on its content, an unusable reply): one attempt, up to the limit;
- the run's setup (issue 19: a model without strict tool use, a max_tokens the model refuses or that cuts
  every reply off): nothing. Such a setup answers every log with the same error, which looks like each
  log's own fault: it used up every queued log's attempts in three nights. So a log's fault is charged
  only once it is judged the log's: when a later log is labelled, or a fault of another kind follows.
  ``SAME_ERROR_STREAK`` logs in a row failing with the same error (``error_signature``), or the queue
  ending on such faults, send one short harmless request (the setup check): if it is labelled, the
  faults were the logs' own and are charged; if it fails too, the setup is at fault, no attempt is
  charged, and the run stops dispatching and fails saying which setting to check.
"""

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TypedDict

import structlog
from anthropic.types import ToolParam
from django.db import transaction
from django.utils import timezone

from braintrust_ops.clients.claude import ClaudeClient, LogRefused, RunStopping, ToolReply
from braintrust_ops.conf import without_secrets
from braintrust_ops.error_signature import message_shape, refusal_signature, reply_signature
from braintrust_ops.exceptions import PermanentServiceError, RemoteServiceError
from braintrust_ops.models import CommandRun, LogTag, TaggedLog
from braintrust_ops.outage_breaker import OutageBreaker
from braintrust_ops.stopping import StopRequest
from braintrust_ops.tagging_prompt import PROMPT_VERSION, UnusableReply, build_user_message, validate_reply
from braintrust_ops.worker_pool import WorkerPool

logger = structlog.get_logger(__name__)

TAGGED, LOG_FAULT, SERVICE_FAILURE = "tagged", "log_fault", "service_failure"
#: a log's failure that was, or may have been, the run's setup's: stored without using an attempt
SETUP_FAILURE = "setup_failure"
POLL_SECONDS = 0.25
#: logs in a row failing with the same error after which the run checks its setup. Small: a wrong setup
#: fails every log, and the check costs one short request; not 1: one log too long is common enough.
SAME_ERROR_STREAK = 3
#: the setup check's log: short, harmless, and labelled (with no tag, or any) by any working setup
SETUP_CHECK_TEXT = build_user_message(log_input="Hello", log_output="Hello! How can I help you today?", text_limit=100)


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
    #: a log fault's shape (error_signature): the same for every log a wrong setup refuses
    signature: str = ""
    #: a log fault's error, without "this log's": what the run's one line quotes if the setup is at fault
    reason: str = ""
    #: a log fault already judged the log's own (the loop's setup check); a batch's results are judged after
    judged: bool = False


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
        error_type, message = exc.context.get("error_type", ""), exc.context.get("error_message", "")
        return Result(
            job=job,
            kind=LOG_FAULT,
            error=str(exc),
            signature=refusal_signature(status=exc.status, error_type=error_type, message=message),
            reason=f"HTTP {exc.status} ({error_type}): {message}",
        )
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
        return _reply_fault(job, "Claude's reply was cut off at max_tokens", usage)
    try:
        validated = validate_reply(reply.tool_input, allowed)
    except UnusableReply as exc:
        return _reply_fault(job, f"unusable reply from Claude: {exc}", usage)
    return Result(job=job, kind=TAGGED, tags=validated.tags, dropped=validated.dropped, **usage)


def _reply_fault(job: Job, problem: str, usage: _Usage) -> Result:
    return Result(job=job, kind=LOG_FAULT, error=problem, signature=reply_signature(problem), reason=problem, **usage)


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
        if result.kind in (SERVICE_FAILURE, SETUP_FAILURE):
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
    #: logs whose failure was, or may have been, the run's setup's: no attempt used
    setup_failures: int = 0
    #: the error a wrong setup gave every log, once the setup check failed too ("" while none was found)
    setup_error: str = ""
    #: faults not judged yet (a batch's results) that came SAME_ERROR_STREAK or more in a row alike, charged
    #: as they were stored, for the setup check to judge: (log pk, reason, whether it counted as will_retry)
    suspects: list[tuple[int, str, bool]] = field(default_factory=list)
    #: the current run of such faults alike: (log pk, signature, reason, will_retry)
    _alike: list[tuple[int, str, str, bool]] = field(default_factory=list, repr=False)
    interrupted: bool = False

    @property
    def stopped_early(self) -> bool:
        return bool(self.outage) or bool(self.setup_error) or self.interrupted

    def add(self, result: Result, log: TaggedLog, *, max_attempts: int) -> None:
        """Count a stored result, and say what it cost the log."""
        self.sent += 1
        self.input_tokens += result.input_tokens
        self.output_tokens += result.output_tokens
        if result.kind == SERVICE_FAILURE:
            self.service_failures += 1
            logger.warning("log_tagging_failed", log_id=result.job.log_id, error=result.error, cost_an_attempt=False)
        elif result.kind == SETUP_FAILURE:
            self.setup_failures += 1
            logger.warning(
                "log_tagging_failed", log_id=result.job.log_id, error=result.error, cost_an_attempt=False, setup=True
            )
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
            if not result.judged:
                self._follow(result, retry=retry)
        else:
            self._alike.clear()
            self.dropped_tags += len(result.dropped)
            if result.tags:
                self.tagged += 1
                self.per_tag.update(result.tags)
            else:
                self.no_tag_applied += 1

    def _follow(self, result: Result, *, retry: bool) -> None:
        """Keep the faults alike in a row; from SAME_ERROR_STREAK of them on, they are suspects."""
        signature = result.signature or message_shape(result.error)
        if self._alike and self._alike[0][1] != signature:
            self._alike.clear()
        assert result.job.pk is not None  # a stored result's
        self._alike.append((result.job.pk, signature, result.reason or result.error, retry))
        if len(self._alike) == SAME_ERROR_STREAK:
            self.suspects.extend((pk, reason, counted) for pk, _, reason, counted in self._alike)
        elif len(self._alike) > SAME_ERROR_STREAK:
            self.suspects.append((result.job.pk, result.reason or result.error, retry))


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
        #: log faults of one signature in a row, not stored yet: whose fault they are is not known yet
        self._held: list[Result] = []
        #: the setup check in flight, if any
        self._check: Job | None = None
        self._pool: WorkerPool | None = None

    def run_queue(self, jobs: Iterator[Job]) -> Tally:
        pool = self._pool = WorkerPool(lambda job: tag_one(job, self.call), workers=self.concurrency, name="claude")
        fatal: BaseException | None = None
        deadline: float | None = None
        exhausted = False
        room = self.concurrency * 2
        try:
            with self.stop.draining():
                while True:
                    if deadline is None and (
                        self.stop.is_set() or self.breaker.open or fatal is not None or self.tally.setup_error
                    ):
                        # Stop dispatching: calls not started stay as they were, those in flight get the grace.
                        deadline = time.monotonic() + self.grace_seconds
                        self.call.claude.stop.set()
                        pool.drop_queued()
                    # While the setup is checked, no new log is sent: if it is wrong, each would fail the same way.
                    while deadline is None and not exhausted and self._check is None and pool.in_flight < room:
                        job = next(jobs, None)
                        if job is None:
                            exhausted = True
                        else:
                            pool.submit(job)
                    if pool.in_flight == 0:
                        if deadline is None and self._held:
                            self._check_setup()  # the queue ended on faults not judged yet
                            continue
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
            self._check = None
        # The run stopped before their fault could be judged: no attempt is charged for an unknown cause.
        self._release_held(SETUP_FAILURE, "the run stopped before it could tell whose fault it was")
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
        job, result, error = finished
        if job is self._check:
            self._check = None
            if error is None:
                self._judge(result)
            return None if isinstance(error, RunStopping) else error
        if isinstance(error, RunStopping):
            return None
        if error is not None:
            return error
        self._settle(result)
        return None

    def _settle(self, result: Result) -> None:
        if result.kind == LOG_FAULT:
            self.breaker.success()  # the service answered
            self._suspect(result)
            return
        if result.kind == TAGGED:
            self._release_held(LOG_FAULT)  # this setup labels logs: the faults before were the logs' own
        self._store(result)
        if result.kind == SERVICE_FAILURE:
            self.breaker.service_failure(result.error)
        else:
            self.breaker.success()

    def _store(self, result: Result) -> None:
        log = store_result(result, run=self.run, model=self.call.claude.model, tagset=self.call.tagset)
        self.tally.add(result, log, max_attempts=self.max_attempts)
        if self.progress is not None:
            self.progress.step(self.tally)

    def _suspect(self, result: Result) -> None:
        """A log's fault, held until it is known whether it is the log's or the setup's."""
        if self.tally.setup_error:
            self._store(self._not_charged(result, "Anthropic refused every request alike: the run's setup is at fault"))
            return
        if self._held and result.signature != self._held[0].signature:
            self._release_held(LOG_FAULT)  # another error: the ones before were not the setup's either
        self._held.append(result)
        if len(self._held) >= SAME_ERROR_STREAK and self._check is None:
            self._check_setup()

    def _check_setup(self) -> None:
        """Send the setup check: a short harmless log that any working setup labels."""
        assert self._pool is not None
        self._check = Job(pk=None, log_id="(setup check)", user_text=SETUP_CHECK_TEXT)
        self._pool.submit(self._check)
        logger.info("tagging_setup_check", same_error_in_a_row=len(self._held), error=self._held[0].reason)

    def _judge(self, check: Result) -> None:
        """The setup check's answer: labelled, the held faults were the logs' own; failed on its own, the setup
        is at fault; the service failing says nothing, and no attempt is charged for the faults held."""
        # Billed like any call, though it labels no log.
        self.tally.input_tokens += check.input_tokens
        self.tally.output_tokens += check.output_tokens
        logger.info("tagging_setup_checked", outcome=check.kind, error=check.error)
        if check.kind == TAGGED:
            self._release_held(LOG_FAULT)
        elif check.kind == LOG_FAULT:
            self.tally.setup_error = check.reason
            self._release_held(SETUP_FAILURE, "a short harmless request was refused too: the run's setup is at fault")
        else:
            self.breaker.service_failure(check.error)
            self._release_held(SETUP_FAILURE, f"whose fault it was could not be told ({check.error})")

    def _release_held(self, kind: str, why: str = "") -> None:
        """Store the held faults: charged to their logs (LOG_FAULT), or not (SETUP_FAILURE, saying why)."""
        held, self._held = self._held, []
        for result in held:
            self._store(replace(result, judged=True) if kind == LOG_FAULT else self._not_charged(result, why))

    @staticmethod
    def _not_charged(result: Result, why: str) -> Result:
        return replace(result, kind=SETUP_FAILURE, error=f"{result.error} (no attempt used: {why})")
