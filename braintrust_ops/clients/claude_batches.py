"""Anthropic's Message Batches through the official SDK: submit a run's requests at half the price, see
where a batch stands, and read its results as a stream.

What this relies on, from the SDK (anthropic/resources/messages/batches.py, types/messages/*batch*)
and platform.claude.com/docs/en/api/messages/batches: ``create(requests=[{custom_id, params}])``
answers at once with the batch ``in_progress``; ``retrieve`` gives ``processing_status`` (in_progress,
canceling, ended) and ``request_counts``; ``list`` returns the most recently created first, page by
page; ``results`` streams one JSON line per request once the batch has ended, in no particular order,
each ``succeeded`` (a Message), ``errored`` (an error response), ``canceled`` or ``expired``.

Results are kept 29 days: "Batch results are available for 29 days after creation. After that, you may
still view the Batch, but its results will no longer be available for download" (platform.claude.com/docs/
en/build-with-claude/batch-processing, "Batch limitations"); the batch then carries ``archived_at``, "the
time at which the Message Batch was archived and its results became unavailable" (types/messages/
message_batch.py, the same in anthropic 0.85 and 2.x).
"""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anthropic

from braintrust_ops.clients.claude import SDK_HTTP, SERVICE, ToolReply, anthropic_errors, tool_reply
from braintrust_ops.conf import secret_values
from braintrust_ops.exceptions import InvalidReply, PermanentServiceError, TransientServiceError
from braintrust_ops.printable import printable
from braintrust_ops.redaction import redact

# The longest wait between two create attempts (a 429's retry-after included).
CREATE_BACKOFF_MAX_SECONDS = 60.0
# What becomes of the work when a batch call fails for a while, as the failure's message says it.
CREATE_FAILED = "its logs stay queued and the next run submits them again."
STAYS_OPEN = "the batch stays open and the next run asks again."
# How long after its creation a batch's results can be downloaded (the module docstring's source).
RESULTS_KEPT = timedelta(days=29)


class ResultsBrokeOff(TransientServiceError):
    """The results stream was cut off or garbled mid-way: reading it again may get it whole."""


class ResultsNotFound(PermanentServiceError):
    """Anthropic gave no results for an ended batch: its results URL answered 404 or 410, or the batch had none.
    Past RESULTS_KEPT that is the archive; before, it may pass (anthropics/anthropic-sdk-python#1432: results
    answering 404 for a while after a batch ended)."""


@dataclass(frozen=True)
class BatchState:
    batch_id: str
    ended: bool
    created_at: datetime
    expires_at: datetime | None
    ended_at: datetime | None
    #: when Anthropic archived the batch: its results can no longer be downloaded
    archived_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def request_total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class BatchOutcome:
    """One request's result: ``kind`` is succeeded, errored, canceled or expired."""

    custom_id: str
    kind: str
    reply: ToolReply | None = None
    error_type: str = ""
    error_message: str = ""


class BatchClient:
    def __init__(self, *, api_key: str, base_url: str | None, model: str, timeout: float, max_retries: int):
        self.model = model
        self.timeout = timeout
        self._max_retries = max_retries
        self._sdk = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
        # Creating a batch is not safe to repeat: the SDK sends no idempotency key (anthropic/_base_client.py,
        # ``BaseClient.__init__`` sets ``self._idempotency_header = None`` and the Anthropic client never sets
        # it), so its retry after a time-out or a cut-off reply would create, and bill, a second batch that no
        # row knows. So create goes without SDK retries (``_create_once``), retried only where Anthropic
        # certainly did not take it; a lost reply is left to the next run, which adopts the batch (``_recover``
        # in services/tagging/batches.py).
        self._create_once = self._sdk.with_options(max_retries=0)

    @classmethod
    def from_config(cls, config) -> "BatchClient":
        return cls(
            api_key=config.anthropic_api_key,
            base_url=config.anthropic_base_url,
            model=config.tagging_model,
            timeout=config.claude_timeout_seconds,
            max_retries=config.claude_max_retries,
        )

    def close(self) -> None:
        self._sdk.close()

    def create(self, requests: list[dict[str, Any]]) -> BatchState:
        """Submit one batch. Sent again only after an answer that says it was not taken (429, 5xx, 529)
        or a connection never made; a time-out, a dropped or cut-off or garbled reply fails at once (the
        batch may exist: the next run finds it)."""
        attempt = 0
        while True:
            try:
                with _garbled_reply("create", "the next run looks for the batch and adopts it"):
                    with anthropic_errors(self.model, batch=CREATE_FAILED):
                        return _state(self._create_once.messages.batches.create(requests=requests))  # type: ignore[arg-type]
            except InvalidReply:
                raise
            except TransientServiceError as exc:
                if not _not_taken(exc.__cause__):
                    raise TransientServiceError(
                        f"Anthropic's reply to the batch create was lost ({type(exc.__cause__).__name__}); the next "
                        "run looks for the batch and adopts it.",
                        service=SERVICE,
                    ) from exc.__cause__
                if attempt >= self._max_retries:
                    raise
                attempt += 1
                time.sleep(_create_backoff(exc.__cause__, attempt))

    def retrieve(self, batch_id: str) -> BatchState | None:
        """Where the batch stands; None when Anthropic knows no such batch (deleted, or never ours)."""
        try:
            with _garbled_reply("retrieve", "the batch stays open and the next run asks again"):
                with anthropic_errors(self.model, batch=STAYS_OPEN):
                    return _state(self._sdk.messages.batches.retrieve(batch_id))
        except PermanentServiceError as exc:
            if exc.status == 404:
                return None
            raise

    def created_since(self, since: datetime) -> Iterator[BatchState]:
        """The account's batches created at or after ``since``, newest first (the list's own order)."""
        with anthropic_errors(self.model, batch=STAYS_OPEN):
            for batch in self._sdk.messages.batches.list(limit=100):
                if batch.created_at < since:
                    return
                yield _state(batch)

    def results(self, batch_id: str, *, tool_name: str) -> Iterator[BatchOutcome]:
        """The ended batch's results, read line by line: never all of them in memory. ResultsBrokeOff when the
        stream breaks off (what was yielded stands), ResultsNotFound when Anthropic has none to give."""
        try:
            with anthropic_errors(self.model, batch=STAYS_OPEN):
                for line in self._sdk.messages.batches.results(batch_id):
                    yield _outcome(line, tool_name)
        except (SDK_HTTP.HTTPError, ValueError) as exc:
            # A stream cut off or garbled mid-way (ValueError: the JSON decoder's). The SDK does not retry a
            # body it has begun to hand over; the caller reads the results again.
            raise ResultsBrokeOff(
                f"The results of batch {batch_id} broke off while being read ({type(exc).__name__}).",
                service=SERVICE,
            ) from exc
        except PermanentServiceError as exc:
            if exc.status not in (404, 410):
                raise
            raise ResultsNotFound(
                f"Anthropic has no results for batch {batch_id} (HTTP {exc.status}).",
                service=SERVICE,
                status=exc.status,
            ) from exc
        except anthropic.AnthropicError as exc:
            # The SDK's own check, before any request: the batch it retrieved has no results_url
            # (resources/messages/batches.py, ``results``: "No `results_url` for the given batch").
            if "results_url" not in str(exc):
                raise
            raise ResultsNotFound(
                f"Anthropic has no results for batch {batch_id} (the batch has no results URL).", service=SERVICE
            ) from exc


@contextmanager
def _garbled_reply(action: str, then: str) -> Iterator[None]:
    """A 200 whose body is not JSON: the SDK raises the json module's error as it is (anthropic/_response.py,
    ``_parse`` calls ``response.json()``) and does not retry it. One line instead of its traceback."""
    try:
        yield
    except json.JSONDecodeError as exc:
        raise InvalidReply(
            f"Anthropic's reply to the batch {action} could not be read (not JSON); {then}.", service=SERVICE
        ) from exc


def _not_taken(error: BaseException | None) -> bool:
    """True when Anthropic certainly did not create the batch: it answered with a status the SDK would retry
    (429, 5xx: ``SyncAPIClient._should_retry``), or the connection was never made."""
    if isinstance(error, anthropic.APIStatusError):
        return error.status_code in (408, 409, 429) or error.status_code >= 500
    return isinstance(error, anthropic.APIConnectionError) and isinstance(error.__cause__, SDK_HTTP.ConnectError)


def _create_backoff(error: BaseException | None, attempt: int) -> float:
    """The server's retry-after when it gave one, else 0.5 s doubling; at most CREATE_BACKOFF_MAX_SECONDS."""
    response = getattr(error, "response", None)
    try:
        wait = float(response.headers["retry-after"]) if response is not None else None
    except (KeyError, ValueError):
        wait = None
    wait = 0.5 * 2 ** (attempt - 1) if wait is None or wait != wait else wait  # NaN: none given
    return max(0.0, min(wait, CREATE_BACKOFF_MAX_SECONDS))


def _state(batch) -> BatchState:
    counts = batch.request_counts
    return BatchState(
        batch_id=batch.id,
        ended=batch.processing_status == "ended",
        created_at=batch.created_at,
        expires_at=batch.expires_at,
        ended_at=batch.ended_at,
        archived_at=batch.archived_at,
        counts={
            "processing": counts.processing,
            "succeeded": counts.succeeded,
            "errored": counts.errored,
            "canceled": counts.canceled,
            "expired": counts.expired,
        },
    )


def _outcome(line, tool_name: str) -> BatchOutcome:
    result = line.result
    if result.type == "succeeded":
        return BatchOutcome(custom_id=line.custom_id, kind="succeeded", reply=tool_reply(result.message, tool_name))
    if result.type == "errored":
        error = result.error.error
        return BatchOutcome(
            custom_id=line.custom_id,
            kind="errored",
            error_type=str(getattr(error, "type", "") or "error"),
            # From Anthropic's reply: redacted before it is cut, printable, as an error raised is.
            error_message=printable(redact(str(getattr(error, "message", "") or ""), secret_values()), limit=300),
        )
    return BatchOutcome(custom_id=line.custom_id, kind=result.type)
