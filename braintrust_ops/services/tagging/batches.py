"""tag_logs --batch: the queue sent as Anthropic Message Batches, at half the price, and collected by a
later run (or by the same one, with --wait).

A batch is stored before it is submitted and its logs point at it, so no run sends them again while it
is open, and a crash between Anthropic accepting it and this app recording its id loses nothing: the
next run finds it by listing the account's batches. Every run, interactive or not, first settles the
batches left open (``batches_settle``), so switching modes never strands a log.

What a batch result costs a log is what the same answer costs it in the interactive path
(``dispatch``): ``succeeded`` is validated by the same code; ``errored`` on the request itself
(``invalid_request_error``) uses an attempt; any other error, ``expired``, ``canceled`` and a result line
that cannot be read (``unreadable``: the SDK builds it unchecked) say nothing about the log, which goes back
to the queue with no attempt used.

A batch whose results can no longer be had (Anthropic archives them 29 days after the batch was created,
``RESULTS_KEPT``) is settled as abandoned: no result came back, so its logs go back to the queue with no
attempt used, and the run says so in one line without failing. A results stream that breaks off is read
again, up to RESULTS_READS times in a run; results already stored are skipped (matched by custom_id to the
logs still waiting in the batch), so none is stored or counted twice.
"""

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Mod
from django.utils import timezone

from braintrust_ops.batch_requests import chunked, custom_id, request_bytes
from braintrust_ops.clients.claude_batches import (
    RESULTS_KEPT,
    UNREADABLE,
    BatchClient,
    BatchOutcome,
    BatchState,
    ResultsBrokeOff,
    ResultsNotFound,
)
from braintrust_ops.conf import without_secrets
from braintrust_ops.exceptions import PermanentServiceError, TransientServiceError
from braintrust_ops.models import CommandRun, TagBatch, TaggedLog
from braintrust_ops.services.tagging.dispatch import (
    LOG_FAULT,
    SERVICE_FAILURE,
    Job,
    Result,
    Tally,
    result_from_reply,
    store_result,
)
from braintrust_ops.shards import Shard
from braintrust_ops.tagging_prompt import TOOL_NAME

logger = structlog.get_logger(__name__)

# A crashed run's batch is looked for among the batches created from this long before its row.
CLOCK_SKEW = timedelta(minutes=1)
#: A create the client gave up on (a time-out, a lost reply) may still be carried out by Anthropic after
#: that: the request is on its way or being handled. A batch claimed less than this many of the client's
#: time-outs ago, with no batch of its size listed yet, is given until then before it is judged never
#: accepted: released too early, its logs would be sent again and paid for twice.
CREATE_SETTLE_TIMEOUTS = 3
# Results are matched to their logs this many at a time, so memory does not grow with the batch.
RESULTS_CHUNK = 500
# A batch's results stream is read at most this many times in a run when it breaks off, pausing
# RESULTS_READ_PAUSE_SECONDS times the reads so far between two reads.
RESULTS_READS = 3
RESULTS_READ_PAUSE_SECONDS = 0.5
# How long a batch Anthropic answers 404 for stays open before its logs are sent again (``_not_found``): more
# than a passing fault lasts, less than a night, so the next night's run decides.
NOT_FOUND_GRACE = timedelta(hours=12)


@dataclass
class BatchCounts:
    """What happened to batches in a run, for its report."""

    submitted: int = 0
    requests_submitted: int = 0
    collected: int = 0
    #: never accepted, or lost: their logs went back to the queue
    abandoned: int = 0
    #: a crashed run's batches found by listing the account's batches
    recovered: int = 0
    #: results by type: succeeded, errored, expired, canceled, unreadable
    outcomes: Counter = field(default_factory=Counter)
    #: tokens of the results collected in this run, billed at the batch price
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, other: "BatchCounts") -> None:
        for name in ("submitted", "requests_submitted", "collected", "abandoned", "recovered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.outcomes.update(other.outcomes)


@dataclass(frozen=True)
class BatchSpec:
    """What the run's requests are built with; stored on each batch so its results are judged by it."""

    model: str
    prompt_version: str
    tagset: str
    allowed: list[str]
    params: Callable[[Job], dict]
    max_bytes: int


def _unsettled(shard: Shard | None):
    """The open batches this run settles. Batches belong to the project, not to a shard layout: an
    unsharded run settles all of them (it excludes every other tag_logs run, locks.tag_logs_lock). A shard
    run settles its own shard's, and hands over those opened under another layout (unsharded, or another
    count), each to exactly one shard of its count, ``pk mod N``: shard runs of one count work side by
    side, so two of them must never collect the same batch, and runs of another count never overlap them.
    A batch is collected whole, whichever shard's logs it holds."""
    unsettled = TagBatch.objects.filter(state__in=[TagBatch.State.SUBMITTING, TagBatch.State.OPEN])
    if shard is not None:
        other_layout = ~Q(shard__endswith=f"/{shard.count}")  # "" and "I/M" for M != N; "1/12" ends "/12"
        unsettled = unsettled.alias(pk_mod=Mod("pk", shard.count)).filter(
            Q(shard=str(shard)) | (other_layout & Q(pk_mod=shard.index))
        )
    return unsettled.order_by("created_at", "pk")


def has_unsettled(shard: Shard | None) -> bool:
    return _unsettled(shard).exists()


def batches_settle(
    client: BatchClient,
    *,
    shard: Shard | None,
    run: CommandRun | None,
    max_attempts: int,
    tally: Tally,
    counts: BatchCounts,
) -> None:
    """Recover the batches a crashed run submitted, and collect every ended one of this shard. Counted into
    ``counts`` as it goes: what was collected before an error is raised stays in the run's report."""
    submitting = list(_unsettled(shard).filter(state=TagBatch.State.SUBMITTING))
    if submitting:
        # Listed once for every batch to recover: the oldest row bounds how far back to look.
        listed = list(client.created_since(submitting[0].created_at - CLOCK_SKEW))
        if _settle_for_late_creates(submitting, listed, timeout=client.timeout):
            listed = list(client.created_since(submitting[0].created_at - CLOCK_SKEW))
        for batch in submitting:
            _recover(batch, listed, counts)
    _collect_ended(client, shard=shard, run=run, max_attempts=max_attempts, tally=tally, counts=counts)


def batches_submit(
    jobs: Iterable[Job], *, client: BatchClient, spec: BatchSpec, shard: Shard | None, run: CommandRun | None
) -> BatchCounts:
    """Submit the jobs as batches within the API's limits: each stored, its logs claimed, then sent."""
    counts = BatchCounts()
    requests = ((job, {"custom_id": custom_id(job.log_id), "params": spec.params(job)}) for job in jobs)
    for chunk in chunked(requests, weigh=lambda item: request_bytes(item[1]), max_bytes=spec.max_bytes):
        batch = _claim(chunk, spec=spec, shard=shard, run=run)
        try:
            state = client.create([request for _, request in chunk])
        except PermanentServiceError as exc:
            # Refused as a whole (it was never accepted): its logs go back to the queue, and the run says why.
            _abandon(batch, f"Anthropic refused the batch: {exc}")
            counts.abandoned += 1
            raise
        # Any other error leaves the row SUBMITTING: Anthropic may have accepted it, and the next run looks.
        _record_acceptance(batch, state.batch_id, state.expires_at)
        counts.submitted += 1
        counts.requests_submitted += len(chunk)
        logger.info("batch_submitted", batch_id=state.batch_id, requests=len(chunk))
    return counts


def batches_wait(
    client: BatchClient,
    *,
    minutes: float,
    poll_seconds: float,
    shard: Shard | None,
    run: CommandRun | None,
    max_attempts: int,
    tally: Tally,
    counts: BatchCounts,
) -> None:
    """Collect this shard's open batches as they end, for up to ``minutes``. A signal ends the wait; the
    batches stay open and a later run collects them. A batch not found does not end the wait (such a 404
    can pass, as soon as a second after the create: anthropic-sdk-python#1432): the next poll may find it,
    and only a wait that ends with it still not found raises. Any other failure ends the wait at once."""
    deadline = time.monotonic() + minutes * 60
    while True:
        try:
            _collect_ended(client, shard=shard, run=run, max_attempts=max_attempts, tally=tally, counts=counts)
        except BatchNotFound as exc:
            failed: BatchNotFound | None = exc
            logger.warning("batches_poll_failed", error=str(exc))
        else:
            failed = None
        if not _unsettled(shard).exists():
            return
        if time.monotonic() >= deadline:
            if failed is not None:
                raise failed
            return
        time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))


def still_open(shard: Shard | None) -> int:
    """The open batches this run answers for (``_unsettled``), stranded ones of another layout included."""
    return _unsettled(shard).count()


def _claim(chunk: list[tuple[Job, dict]], *, spec: BatchSpec, shard: Shard | None, run) -> TagBatch:
    """Store the batch and point its logs at it, in one transaction, before anything is sent."""
    with transaction.atomic():
        batch = TagBatch.objects.create(
            shard=str(shard or ""),
            request_count=len(chunk),
            model=spec.model,
            prompt_version=spec.prompt_version,
            tagset_fingerprint=spec.tagset,
            allowed_tags=spec.allowed,
            run=run,
        )
        TaggedLog.objects.bulk_update(
            [TaggedLog(pk=job.pk, batch=batch, custom_id=request["custom_id"]) for job, request in chunk],
            ["batch", "custom_id"],
            batch_size=500,
        )
    return batch


def _record_acceptance(batch: TagBatch, batch_id: str, expires_at) -> None:
    TagBatch.objects.filter(pk=batch.pk).update(
        state=TagBatch.State.OPEN, batch_id=batch_id, submitted_at=timezone.now(), expires_at=expires_at
    )


def _abandon(batch: TagBatch, reason: str, *, log_error: str = "") -> None:
    """Release the batch's logs to the queue, their attempts as they were; ``log_error`` says why on each."""
    reason = without_secrets(reason)
    with transaction.atomic():
        released = TaggedLog.objects.filter(batch=batch)
        if log_error:
            released.update(batch=None, last_error=log_error)
        else:
            released.update(batch=None)
        TagBatch.objects.filter(pk=batch.pk).update(state=TagBatch.State.ABANDONED, error=reason[:2000])
    logger.warning("batch_abandoned", batch=batch.pk, batch_id=batch.batch_id, reason=reason)


def _settle_for_late_creates(submitting: list[TagBatch], listed: list[BatchState], *, timeout: float) -> bool:
    """Wait until every batch claimed just now without a match in ``listed`` is old enough to judge; True
    when it waited (list again)."""
    known = _known_batch_ids()
    settle = timedelta(seconds=CREATE_SETTLE_TIMEOUTS * timeout)
    young = [batch for batch in submitting if not _candidates(batch, listed, known)]
    wait = max(((batch.created_at + settle - timezone.now()).total_seconds() for batch in young), default=0.0)
    if wait <= 0:
        return False
    logger.info("batch_create_settling", seconds=round(wait, 3), batches=len(young))
    time.sleep(wait)
    return True


def _known_batch_ids() -> set[str]:
    return set(TagBatch.objects.exclude(batch_id="").values_list("batch_id", flat=True))  # a few a night


def _candidates(batch: TagBatch, listed: list[BatchState], known: set[str]) -> list[BatchState]:
    """The listed batches that may be ``batch``: created since it was stored, of its size, known to no row."""
    return [
        state
        for state in listed
        if state.created_at >= batch.created_at - CLOCK_SKEW
        and state.batch_id not in known
        and state.request_total == batch.request_count
    ]


def _recover(batch: TagBatch, listed: list[BatchState], counts: BatchCounts) -> None:
    """A batch stored but never recorded as accepted: a run crashed, or lost the answer, after sending it.
    Adopt the one batch of the account created since, of the same size, that no row knows; with none
    (it was never accepted) or several (no telling which), release its logs to the queue. A wrong pick
    costs money, never a label: results are matched to logs by custom_id, and a log without a result
    goes back to the queue."""
    candidates = _candidates(batch, listed, _known_batch_ids())
    if len(candidates) == 1:
        _record_acceptance(batch, candidates[0].batch_id, candidates[0].expires_at)
        counts.recovered += 1
        logger.info("batch_recovered", batch_id=candidates[0].batch_id, requests=batch.request_count)
        return
    counts.abandoned += 1
    _abandon(
        batch,
        "a crashed run's batch that Anthropic never accepted"
        if not candidates
        else f"a crashed run's batch: {len(candidates)} unknown batches of its size, no telling which was it",
    )


def _collect_ended(
    client: BatchClient, *, shard: Shard | None, run, max_attempts: int, tally: Tally, counts: BatchCounts
) -> None:
    """Collect every ended batch. One whose results cannot be read this run stays open, and the others are
    collected all the same (one batch must not hold back the rest night after night); then its error is raised,
    the first one other than a batch not found if there is one (a wait polls on through a batch not found)."""
    unread: TransientServiceError | None = None
    for batch in _unsettled(shard).filter(state=TagBatch.State.OPEN):
        state = client.retrieve(batch.batch_id)
        if state is None:
            missing = _not_found(batch, counts)
            unread = unread or missing
            continue
        if batch.not_found_since is not None:
            TagBatch.objects.filter(pk=batch.pk).update(not_found_since=None)  # the 404 passed
        if state.archived_at is not None:
            # Whatever its processing status: archived, its results are gone for good.
            _results_gone(batch, f"archived on {state.archived_at:%Y-%m-%d}", counts)
        elif state.ended:
            try:
                _collect(
                    client,
                    batch,
                    ended_at=state.ended_at,
                    run=run,
                    max_attempts=max_attempts,
                    tally=tally,
                    counts=counts,
                )
            except ResultsNotFound as exc:
                if timezone.now() < state.created_at + RESULTS_KEPT:
                    unread = _first_failure(unread) or TransientServiceError(
                        f"{exc} It was created on {state.created_at:%Y-%m-%d}, within the 29 days Anthropic keeps "
                        "results: the batch stays open and the next run asks again.",
                        service=exc.service,
                        status=exc.status,
                    )
                    continue
                # Past the 29 days, even if the batch does not say archived yet.
                how = f"its results answer HTTP {exc.status}" if exc.status else "it has no results URL"
                _results_gone(batch, f"created on {state.created_at:%Y-%m-%d}, {how}", counts)
            except ResultsBrokeOff as exc:
                unread = _first_failure(unread) or exc
            else:
                counts.collected += 1
    if unread is not None:
        raise unread


class BatchNotFound(TransientServiceError):
    """Anthropic's retrieve answers 404 for an open batch, within NOT_FOUND_GRACE of the first 404."""


def _not_found(batch: TagBatch, counts: BatchCounts) -> BatchNotFound | None:
    """A batch Anthropic's retrieve answers 404 for. Given up, its logs queued again, only when it is still not
    found NOT_FOUND_GRACE after the first 404: such a 404 can pass (anthropics/anthropic-sdk-python#1432,
    "Intermittent NotFoundError (404) on Batch API"), and giving up on a batch that comes back pays for its
    logs twice. Until then it stays open and the error says when it will be given up."""
    now = timezone.now()
    since = batch.not_found_since
    if since is None:
        since = now
        TagBatch.objects.filter(pk=batch.pk).update(not_found_since=now)
    if now - since >= NOT_FOUND_GRACE:
        counts.abandoned += 1
        _abandon(
            batch,
            f"Anthropic has not known batch {batch.batch_id} since {since:%Y-%m-%d %H:%M} UTC (HTTP 404); its logs "
            "are queued again, no attempt used",
        )
        return None
    return BatchNotFound(
        f"Anthropic does not find batch {batch.batch_id} (HTTP 404) since {since:%Y-%m-%d %H:%M} UTC. Such a 404 can "
        f"pass: the batch stays open, and if it is still not found after {since + NOT_FOUND_GRACE:%Y-%m-%d %H:%M} "
        "UTC its logs are sent again. If ANTHROPIC_API_KEY changed workspace since it was submitted, that is why.",
        service="Anthropic",
        status=404,
    )


def _first_failure(unread: TransientServiceError | None) -> TransientServiceError | None:
    """The failure a poll has met so far, unless it is a batch not found: any other one is raised before it."""
    return None if isinstance(unread, BatchNotFound) else unread


def _results_gone(batch: TagBatch, why: str, counts: BatchCounts) -> None:
    """No result of the batch can be had any more: its logs were never labelled, so they go back to the queue
    with no attempt used, and the run goes on."""
    waiting = TaggedLog.objects.filter(batch=batch).count()
    message = (
        f"Batch {batch.batch_id} expired before its results were collected ({why}: Anthropic keeps a batch's "
        f"results 29 days); its {waiting} logs are queued again, no attempt used."
    )
    counts.abandoned += 1
    _abandon(
        batch, message, log_error=f"batch {batch.batch_id} expired before its results were collected; queued again"
    )
    logger.warning("batch_results_gone", batch_id=batch.batch_id, logs=waiting, message=message)


def _collect(
    client: BatchClient, batch: TagBatch, *, ended_at, run, max_attempts: int, tally: Tally, counts: BatchCounts
) -> None:
    """Store every result of the ended batch; what has no result goes back to the queue. A stream that breaks
    off is read again; results already stored are skipped, so each is stored and counted once."""
    stored = _Stored(
        outcomes=Counter(batch.outcomes), tokens=Counter(input=batch.input_tokens, output=batch.output_tokens)
    )
    for read in range(1, RESULTS_READS + 1):
        try:
            for chunk in _in_chunks(client.results(batch.batch_id, tool_name=TOOL_NAME), RESULTS_CHUNK):
                _store_chunk(chunk, batch, stored, run=run, max_attempts=max_attempts, tally=tally, counts=counts)
            break
        except ResultsBrokeOff as exc:
            if read == RESULTS_READS:
                raise ResultsBrokeOff(
                    f"{str(exc).rstrip('.')}, {RESULTS_READS} times in this run; the results read are stored, the "
                    "batch stays open and the next run collects it again.",
                    service=exc.service,
                ) from exc
            logger.warning("batch_results_read_again", batch_id=batch.batch_id, read=read, error=str(exc))
            time.sleep(RESULTS_READ_PAUSE_SECONDS * read)
    with transaction.atomic():
        missing = TaggedLog.objects.filter(batch=batch).update(
            batch=None, last_error=f"no result for it in batch {batch.batch_id}; queued again"
        )
        TagBatch.objects.filter(pk=batch.pk).update(
            state=TagBatch.State.COLLECTED, ended_at=ended_at, collected_at=timezone.now()
        )
    logger.info("batch_collected", batch_id=batch.batch_id, outcomes=dict(stored.outcomes), without_result=missing)


@dataclass
class _Stored:
    """What a batch's results have stored so far, over every read of them (and every run)."""

    outcomes: Counter
    tokens: Counter


def _store_chunk(
    chunk: list[BatchOutcome], batch: TagBatch, stored: _Stored, *, run, max_attempts: int, tally: Tally, counts
) -> None:
    # Only the logs still waiting in the batch: one whose result an earlier read stored has left it.
    waiting = {
        log.custom_id: log
        for log in TaggedLog.objects.filter(batch=batch, custom_id__in=[outcome.custom_id for outcome in chunk]).only(
            "pk", "log_id", "custom_id"
        )
    }
    for outcome in chunk:
        # Taken out as it is stored: a custom_id the stream repeats is stored once.
        log = waiting.pop(outcome.custom_id, None)
        if log is None:
            continue  # stored by an earlier read of these results, or not one of ours
        result = _result(outcome, Job(pk=log.pk, log_id=log.log_id, user_text=""), batch.allowed_tags, batch.batch_id)
        saved = store_result(
            result, run=run, model=batch.model, tagset=batch.tagset_fingerprint, prompt_version=batch.prompt_version
        )
        tally.add(result, saved, max_attempts=max_attempts)
        stored.outcomes[outcome.kind] += 1
        counts.outcomes[outcome.kind] += 1
        stored.tokens.update({"input": result.input_tokens, "output": result.output_tokens})
        counts.input_tokens += result.input_tokens
        counts.output_tokens += result.output_tokens
    # Progress survives a read that breaks off: a later read, or the next run, goes on from here.
    TagBatch.objects.filter(pk=batch.pk).update(
        outcomes=dict(stored.outcomes), input_tokens=stored.tokens["input"], output_tokens=stored.tokens["output"]
    )


# An errored result carries Anthropic's error object (anthropic/types/shared/error_object.py: invalid_request_error,
# authentication_error, billing_error, permission_error, not_found_error, rate_limit_error, timeout_error,
# api_error, overloaded_error). Params are validated only once the batch has ended, and a request they
# refuse comes back invalid_request_error (platform.claude.com/docs/en/build-with-claude/batch-processing):
# the log's own request, as a 400 is in the interactive path. The setup's errors cannot be fixed by
# reading the results again, so they too send the log back to the queue, saying what to check.
SETUP_ERRORS = frozenset({"authentication_error", "billing_error", "permission_error", "not_found_error"})


def _result(outcome: BatchOutcome, job: Job, allowed: list[str], batch_id: str) -> Result:
    if outcome.kind == "succeeded" and outcome.reply is not None:
        return result_from_reply(job, outcome.reply, allowed)
    if outcome.kind == "errored" and outcome.error_type == "invalid_request_error":
        return Result(
            job=job,
            kind=LOG_FAULT,
            error=f"Anthropic refused this log's request in the batch ({outcome.error_type}): {outcome.error_message}",
        )
    if outcome.kind == "errored":
        check = (
            "; check ANTHROPIC_API_KEY and BRAINTRUST_OPS_TAGGING_MODEL" if outcome.error_type in SETUP_ERRORS else ""
        )
        return Result(
            job=job,
            kind=SERVICE_FAILURE,
            error=f"Anthropic failed this log's request in the batch ({outcome.error_type}): {outcome.error_message}"
            + check,
        )
    if outcome.kind == UNREADABLE:
        return Result(
            job=job,
            kind=SERVICE_FAILURE,
            error=f"its result in batch {batch_id} could not be read (not of the documented shape); queued again",
        )
    return Result(job=job, kind=SERVICE_FAILURE, error=f"the batch request was {outcome.kind}; queued again")


def _in_chunks(outcomes: Iterable[BatchOutcome], size: int) -> Iterator[list[BatchOutcome]]:
    chunk: list[BatchOutcome] = []
    for outcome in outcomes:
        chunk.append(outcome)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
