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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anthropic
import structlog
from anthropic.types.messages import MessageBatch

from braintrust_ops.clients.claude import (
    SDK_HTTP,
    SERVICE,
    ToolReply,
    anthropic_errors,
    is_count,
    tool_reply,
    unredirected_http_client,
)
from braintrust_ops.conf import secret_values
from braintrust_ops.exceptions import InvalidReply, PermanentServiceError, TransientServiceError
from braintrust_ops.printable import printable
from braintrust_ops.redaction import redact

logger = structlog.get_logger(__name__)

# The longest wait between two create attempts (a 429's retry-after included).
CREATE_BACKOFF_MAX_SECONDS = 60.0
# What becomes of the work when a batch call fails for a while, as the failure's message says it.
CREATE_FAILED = "its logs stay queued and the next run submits them again."
STAYS_OPEN = "the batch stays open and the next run asks again."
# What becomes of the work when a batch call's reply cannot be read.
CREATE_UNREAD = "the batch may exist: the next run looks for it and adopts it"
RETRIEVE_UNREAD = "the batch stays open and the next run asks again"
LIST_UNREAD = "the batches to recover wait and the next run lists them again"
# The longest batch id kept: TagBatch.batch_id's column.
BATCH_ID_MAX_CHARS = 128
COUNT_NAMES = ("processing", "succeeded", "errored", "canceled", "expired")
# How long after its creation a batch's results can be downloaded (the module docstring's source).
RESULTS_KEPT = timedelta(days=29)
# A result line of another shape than the API documents, or of a type it does not name (``_outcome``).
UNREADABLE = "unreadable"


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
    """One request's result: ``kind`` is succeeded, errored, canceled, expired or unreadable."""

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
        options: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
        }
        # No redirects for the API's calls (``unredirected_http_client``). The results download keeps the SDK's
        # default of following them: it is a file at the batch's ``results_url``, and whether Anthropic ever
        # serves that file by redirect, the API reference does not say.
        self._sdk = anthropic.Anthropic(http_client=unredirected_http_client(), **options)
        self._results_sdk = anthropic.Anthropic(**options)
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
        self._results_sdk.close()

    def create(self, requests: list[dict[str, Any]]) -> BatchState:
        """Submit one batch. Sent again only after an answer that says it was not taken (429, 5xx, 529)
        or a connection never made; a time-out, a dropped or cut-off or garbled reply fails at once (the
        batch may exist: the next run finds it)."""
        attempt = 0
        while True:
            try:
                with _garbled_reply("create", CREATE_UNREAD):
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
        """Where the batch stands; None when Anthropic answers 404: no such batch (deleted, or of another
        workspace), or one it cannot find for a while (the run's ``_not_found`` decides which)."""
        try:
            with _garbled_reply("retrieve", RETRIEVE_UNREAD):
                with anthropic_errors(self.model, batch=STAYS_OPEN):
                    return _state(self._sdk.messages.batches.retrieve(batch_id))
        except PermanentServiceError as exc:
            if exc.status == 404:
                return None
            raise

    def created_since(self, since: datetime) -> Iterator[BatchState]:
        """The account's batches created at or after ``since``, newest first (the list's own order). Page by
        page, each page checked: a page that is not one reads as "no batches", which would have the run give
        up on a batch Anthropic took and submit, and pay for, its logs again."""
        with _garbled_reply("list", LIST_UNREAD), anthropic_errors(self.model, batch=STAYS_OPEN):
            page = _page(lambda: self._sdk.messages.batches.list(limit=100))
            while True:
                for batch in page.data:
                    state = _state(batch)
                    if state.created_at < since:
                        return
                    yield state
                if not page.has_next_page():
                    return
                page = _page(page.get_next_page)

    def results(self, batch_id: str, *, tool_name: str) -> Iterator[BatchOutcome]:
        """The ended batch's results, read line by line: never all of them in memory. ResultsBrokeOff when the
        stream breaks off (what was yielded stands), ResultsNotFound when Anthropic has none to give."""
        try:
            with anthropic_errors(self.model, batch=STAYS_OPEN):
                for line in self._results(batch_id):
                    outcome = _outcome(line, tool_name)
                    if outcome is not None:
                        yield outcome
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

    def _results(self, batch_id: str) -> Any:
        """The SDK's results stream. The SDK retrieves the batch first and reads its ``results_url``
        (resources/messages/batches.py, ``results``): off a 200 that was not JSON, which the SDK hands over as
        its text (``_state``), that is the SDK's own AttributeError, raised before any code of ours runs."""
        try:
            return self._results_sdk.messages.batches.results(batch_id)
        except AttributeError as exc:
            raise ResultsBrokeOff(
                f"The results of batch {batch_id} could not be read: Anthropic's reply to the retrieve before them "
                "was not JSON.",
                service=SERVICE,
            ) from exc


class _Unreadable(Exception):
    """A 200 that is not what the API documents; its message says how (``_garbled_reply``)."""


@contextmanager
def _garbled_reply(action: str, then: str) -> Iterator[None]:
    """A 200 that cannot be read, as one line that says what happens next instead of a traceback. Neither SDK
    retries any of it (anthropic 0.85 ``SyncAPIClient.request`` parses after its retry loop; 2.16 parses inside
    it, retrying only its own connection and status errors): a body said to be JSON raises the json module's
    error as it is, UnicodeDecodeError for bytes not UTF-8 (httpx's and httpx2's ``Response.json`` load the
    bytes); the rest ``_state`` and ``_page`` find (``_Unreadable``)."""
    try:
        yield
    except (json.JSONDecodeError, UnicodeDecodeError, anthropic.APIResponseValidationError, _Unreadable) as exc:
        raise InvalidReply(
            f"Anthropic's reply to the batch {action} could not be read ({_unreadable_because(exc)}); {then}.",
            service=SERVICE,
        ) from exc


def _unreadable_because(error: Exception) -> str:
    if isinstance(error, _Unreadable):
        return str(error)
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(error, json.JSONDecodeError):
        return "not JSON"
    return "not a Message Batch"


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


def _page(fetch: Callable[[], Any]) -> Any:
    """One page of the batch list, or _Unreadable. A 200 that is not JSON comes back from the SDK as its text
    (below), and its list call then sets the page's private attributes on that str (``_request_api_list``'s
    ``_parser``, anthropic 0.85 and 2.16): the SDK's own AttributeError, raised before any code of ours runs."""
    try:
        page = fetch()
    except AttributeError as exc:
        raise _Unreadable("not JSON") from exc
    if not isinstance(getattr(page, "data", None), list):
        raise _Unreadable("not a page of Message Batches")
    return page


def _state(batch: object) -> BatchState:
    """Where a batch stands, from the SDK's MessageBatch; _Unreadable when the reply was no such thing. Neither
    SDK checks a reply (``_base_client.py``, ``_process_response_data``: ``construct_type`` unless
    ``_strict_response_validation``): a field may be missing, null or of another type, and a 200 whose
    Content-Type is not JSON comes back as its text (``_response.py``, ``BaseAPIResponse._parse``). Strict
    validation is not used: it would also refuse a processing status added after the SDK was released."""
    if isinstance(batch, str):
        raise _Unreadable("not JSON")
    if not isinstance(batch, MessageBatch):
        raise _Unreadable("not a Message Batch")
    batch_id = getattr(batch, "id", None)
    if not (isinstance(batch_id, str) and 0 < len(batch_id) <= BATCH_ID_MAX_CHARS and batch_id.isprintable()):
        raise _Unreadable("not a Message Batch")
    status = getattr(batch, "processing_status", None)
    if not isinstance(status, str):
        raise _Unreadable("not a Message Batch")
    counts = getattr(batch, "request_counts", None)
    return BatchState(
        batch_id=batch_id,
        ended=status == "ended",
        created_at=_moment(getattr(batch, "created_at", None)),
        expires_at=_moment_or_none(getattr(batch, "expires_at", None)),
        ended_at=_moment_or_none(getattr(batch, "ended_at", None)),
        archived_at=_moment_or_none(getattr(batch, "archived_at", None)),
        counts={name: _count(getattr(counts, name, None)) for name in COUNT_NAMES},
    )


def _moment(value: object) -> datetime:
    """A datetime with its time zone: the run compares it with aware ones (Django's ``timezone.now()``)."""
    if not (isinstance(value, datetime) and value.utcoffset() is not None):
        raise _Unreadable("not a Message Batch")
    return value


def _moment_or_none(value: object) -> datetime | None:
    return None if value is None else _moment(value)


def _count(value: object) -> int:
    if not is_count(value):
        raise _Unreadable("not a Message Batch")
    return value  # type: ignore[return-value]  # is_count checked it is an int


def _outcome(line: object, tool_name: str) -> BatchOutcome | None:
    """One results line as an outcome; None for a line that names no request (no ``custom_id`` to give it
    to: the request is queued again as one without a result). A line built from JSON of another shape
    (``tool_reply`` says why it is built unchecked) is ``unreadable``: its log goes back to the queue with
    no attempt used, as an interactive reply that cannot be read does, and the other lines are stored."""
    custom_id = getattr(line, "custom_id", None)
    if not isinstance(custom_id, str):
        logger.warning("batch_result_line_unreadable", reason="no custom_id")
        return None
    result = getattr(line, "result", None)
    kind = getattr(result, "type", None)
    if kind == "succeeded":
        try:
            reply = tool_reply(getattr(result, "message", None), tool_name)
        except InvalidReply:
            return BatchOutcome(custom_id=custom_id, kind=UNREADABLE)
        return BatchOutcome(custom_id=custom_id, kind="succeeded", reply=reply)
    if kind == "errored":
        error = getattr(getattr(result, "error", None), "error", None)
        error_type = getattr(error, "type", "")
        message = getattr(error, "message", "")
        return BatchOutcome(
            custom_id=custom_id,
            kind="errored",
            # From Anthropic's reply: printable (a type is a word), redacted before it is cut, as an error raised is.
            error_type=printable(str(error_type or "error"), limit=60),
            error_message=printable(redact(str(message or ""), secret_values()), limit=300),
        )
    if kind in ("canceled", "expired"):
        return BatchOutcome(custom_id=custom_id, kind=kind)
    return BatchOutcome(custom_id=custom_id, kind=UNREADABLE)
