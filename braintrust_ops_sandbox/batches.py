"""Anthropic's Message Batches API, as the sandbox plays it: the batches, their life, their results.

What each rule rests on (the anthropic SDK 2.10 in ``.venv``, and Anthropic's docs):

- The batch object: ``anthropic/types/messages/message_batch.py`` (``id``, ``type: "message_batch"``,
  ``processing_status`` in_progress | canceling | ended, ``request_counts``, ``created_at``,
  ``expires_at`` "24 hours after creation", ``ended_at``, ``cancel_initiated_at``, ``archived_at``,
  ``results_url`` "Specified only once processing ends"). ``request_counts``
  (``message_batch_request_counts.py``): requests start as ``processing`` "and move to one of the
  other statuses only once processing of the entire batch ends".
- A request: ``custom_id`` of 1 to 64 characters matching ``^[a-zA-Z0-9_-]{1,64}$``, unique within
  the batch; 1 to 100,000 requests; 256 MB at most, "you may get a 413 request_too_large error"
  (https://platform.claude.com/docs/en/build-with-claude/batch-processing, "Prepare and create your
  batch", "Batch limitations", "Troubleshooting"; API reference "Create a Message Batch":
  ``minItems: 1, maxItems: 100000``, ``minLength: 1, maxLength: 64``).
- ``params`` are NOT checked at creation: "Validation of the params object for each message request
  is performed asynchronously, and validation errors are returned when processing of the entire batch
  has ended" (same page, "Test your batch requests with the Messages API"). So a request the messages
  route would refuse is accepted here and ends ``errored`` with that same ``invalid_request_error``.
  A batched request also needs ``max_tokens`` of at least 1 ("Batch limitations"), and the SDK types
  its params as ``MessageCreateParamsNonStreaming`` (no ``stream: true``).
- Results: one JSON line per request ``{"custom_id", "result"}``; "not guaranteed to be in the same
  order as requests" (``resources/messages/batches.py``, ``results``); a result is ``succeeded``
  (``message``), ``errored`` (``error``: the standard error shape, ``{"type": "error", "error":
  {"type", "message"}}``, ``types/shared/error_response.py``), ``canceled`` or ``expired``.
- Listing: "Most recently created batches are returned first"; ``limit`` "Defaults to 20. Ranges
  from 1 to 1000"; ``after_id`` / ``before_id`` (``resources/messages/batches.py``, ``list``; the
  SDK's ``SyncPage`` follows ``last_id`` with ``after_id`` and ``first_id`` with ``before_id``).
- Cancel: "the batch enters a canceling state"; canceled batches "end up with a status of ended".
- Archive: "Batch results are available for 29 days after creation. After that, you may still view the
  Batch, but its results will no longer be available for download" (batch-processing, "Batch
  limitations"); ``archived_at`` is "the time at which the Message Batch was archived and its results
  became unavailable" (``message_batch.py``). The docs do not say how the results URL answers then; the
  sandbox answers 404 ``not_found_error`` and keeps ``results_url`` in the batch object.

How the sandbox plays it: a batch is ``in_progress`` for ``processing_seconds`` after creation
(read when it is created), then ``ended``. Its results are worked out when it ends, in request order:
a request whose ``custom_id`` has a scripted outcome (``outcomes``) ends with it, whatever ends the
batch, and the outcome is used up; otherwise, on a normal end, invalid params end ``errored`` and
valid ones ``succeeded`` with the reply the messages route would give (the keyword rule, or the next
scripted ``ReplyQueue`` reply); a canceled batch's requests end ``canceled``, an expired batch's
``expired``. A canceled batch ends at the next look after the cancel. A batch still processing 24 hours
after its creation ends expired, at that moment. A batch is archived 29 days after its creation; a test
gets there by moving the batch back in time (``backdate``), so the rest of the sandbox keeps the clock.
"""

import random
import re
import threading
import time
from collections import UserDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

from braintrust_ops_sandbox import fake_claude

MAX_REQUESTS = 100_000
# "256 MB" in the docs; read as MiB, the larger reading, so the sandbox never refuses what the API takes.
MAX_BATCH_BYTES = 256 * 1024 * 1024
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
EXPIRES_AFTER = timedelta(hours=24)
ARCHIVED_AFTER = timedelta(days=29)
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 20, 1000
SCRIPTABLE_OUTCOMES = ("errored", "canceled", "expired")
_batch_numbers = count(1)


class BatchRequestError(ValueError):
    """A request the real API answers with 400 ``invalid_request_error``; the message says what is wrong."""


class BatchNotFound(LookupError):
    """No batch has this id (404 ``not_found_error``)."""


def errored(message: str, error_type: str = "invalid_request_error") -> dict:
    """An ``errored`` result as the results file carries it."""
    return {"type": "errored", "error": {"type": "error", "error": {"type": error_type, "message": message}}}


def check_outcome(result: object) -> dict:
    """``result`` if it is a scriptable outcome, else ValueError saying why."""
    if not isinstance(result, dict) or result.get("type") not in SCRIPTABLE_OUTCOMES:
        raise ValueError(f"a scripted outcome is an object whose type is one of {list(SCRIPTABLE_OUTCOMES)}")
    if result["type"] != "errored":
        if set(result) != {"type"}:
            raise ValueError(f'a {result["type"]} outcome is just {{"type": "{result["type"]}"}}')
        return result
    error = result.get("error")
    inner = error.get("error") if isinstance(error, dict) else None
    if (
        set(result) != {"type", "error"}
        or not isinstance(error, dict)
        or error.get("type") != "error"
        or not isinstance(inner, dict)
        or not isinstance(inner.get("type"), str)
        or not isinstance(inner.get("message"), str)
    ):
        raise ValueError(
            'an errored outcome is {"type": "errored", "error": {"type": "error", "error": '
            '{"type": "<error type>", "message": "..."}}} (types/shared/error_response.py)'
        )
    return result


class Outcomes(UserDict):
    """Scripted results by ``custom_id``; each is checked when set, and used once."""

    def __setitem__(self, custom_id: str, result: dict) -> None:
        if not isinstance(custom_id, str) or not CUSTOM_ID.fullmatch(custom_id):
            raise ValueError(f"custom_id {custom_id!r} does not match {CUSTOM_ID.pattern}")
        super().__setitem__(custom_id, check_outcome(result))


def params_problem(params: dict) -> str | None:
    """Why the real API would error this batched request's ``params``, or None when it would run it."""
    problem = fake_claude.request_problem(params)
    if problem is not None:
        return problem
    max_tokens = params["max_tokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        return f"max_tokens: a batched request needs max_tokens of at least 1 (got {max_tokens!r})"
    if params.get("stream"):
        return "stream: streaming is not supported in a batch"
    return None


def _timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Batch:
    id: str
    created_at: datetime
    # On the monotonic clock: when processing is over.
    due: float
    requests: list[dict]
    processing_status: str = "in_progress"
    ended_at: datetime | None = None
    cancel_initiated_at: datetime | None = None
    # custom_id -> result, in request order, once ended.
    results: dict[str, dict] | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def expires_at(self) -> datetime:
        return self.created_at + EXPIRES_AFTER

    def archived_at(self, now: datetime) -> datetime | None:
        archived = self.created_at + ARCHIVED_AFTER
        return archived if now >= archived else None


class Batches:
    """The sandbox's message batches. ``reply(params)`` gives the message the messages route would answer."""

    def __init__(
        self,
        reply: Callable[[dict], dict],
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._reply = reply
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._batches: list[_Batch] = []  # oldest first
        self._processing_seconds = 0.0
        self.outcomes = Outcomes()
        # Where results_url points: the running sandbox's URL, set by ``Sandbox.start``.
        self.base_url = ""

    @property
    def processing_seconds(self) -> float:
        """How long a new batch stays ``in_progress`` before it ends (0: it has ended by the next look)."""
        return self._processing_seconds

    @processing_seconds.setter
    def processing_seconds(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ValueError("processing_seconds is a number of seconds, 0 or more")
        self._processing_seconds = float(seconds)

    # --- the API ------------------------------------------------------------------------------------

    def create(self, body: dict) -> dict:
        """POST /v1/messages/batches: the new batch, ``in_progress``; BatchRequestError for a bad body."""
        requests = _checked_requests(body)
        with self._lock:
            batch = _Batch(
                id=f"msgbatch_sandbox_{next(_batch_numbers):06d}",
                created_at=self._now(),
                due=self._clock() + self._processing_seconds,
                requests=requests,
            )
            self._batches.append(batch)
            return self._as_api(batch)

    def retrieve(self, batch_id: str) -> dict:
        with self._lock:
            return self._as_api(self._observed(batch_id))

    def cancel(self, batch_id: str) -> dict:
        with self._lock:
            batch = self._observed(batch_id)
            if batch.processing_status == "ended":
                raise BatchRequestError(f"batch {batch_id} has ended; only a batch still processing can be canceled")
            if batch.processing_status == "in_progress":
                batch.processing_status = "canceling"
                batch.cancel_initiated_at = self._now()
            return self._as_api(batch)

    def page(self, *, limit: str | None = None, after_id: str | None = None, before_id: str | None = None) -> dict:
        """GET /v1/messages/batches: one page, most recently created first."""
        size = _list_limit(limit)
        if after_id and before_id:
            raise BatchRequestError("after_id and before_id cannot be given together")
        with self._lock:
            newest_first = list(reversed(self._batches))
            for batch in newest_first:
                self._advance(batch)
            ids = [batch.id for batch in newest_first]
            for name, cursor in (("after_id", after_id), ("before_id", before_id)):
                if cursor and cursor not in ids:
                    raise BatchRequestError(f"{name}: no batch with id {cursor!r}")
            if before_id:
                end = ids.index(before_id)
                start = max(0, end - size)
                chosen, has_more = newest_first[start:end], start > 0
            else:
                start = ids.index(after_id) + 1 if after_id else 0
                chosen, has_more = newest_first[start : start + size], start + size < len(newest_first)
            data = [self._as_api(batch) for batch in chosen]
        return {
            "data": data,
            "has_more": has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def results(self, batch_id: str) -> list[dict]:
        """The results file's lines, shuffled; BatchRequestError while the batch has not ended."""
        with self._lock:
            batch = self._observed(batch_id)
            if batch.processing_status != "ended":
                raise BatchRequestError(
                    f"batch {batch_id} is {batch.processing_status}; its results are available once it has ended"
                )
            archived = batch.archived_at(self._now())
            if archived is not None:
                raise BatchNotFound(
                    f"batch {batch_id} was archived at {_timestamp(archived)}; its results are no longer available"
                )
            lines = [{"custom_id": custom_id, "result": result} for custom_id, result in batch.results.items()]
        return _shuffled(lines, batch_id)

    # --- control ------------------------------------------------------------------------------------

    def expire(self, batch_id: str) -> dict:
        """End a batch that is still processing as if its 24 hours were up: its requests come back expired."""
        with self._lock:
            batch = self._observed(batch_id)
            if batch.processing_status == "ended":
                raise ValueError(f"batch {batch_id} has already ended; raise processing_seconds to keep it processing")
            self._end(batch, "expired")
            return self._as_api(batch)

    def end_processing(self, batch_id: str) -> dict:
        """End a batch that is still processing as if its processing time were up: its results are worked out now."""
        with self._lock:
            batch = self._observed(batch_id)
            if batch.processing_status != "in_progress":
                raise ValueError(f"batch {batch_id} is {batch.processing_status}, not in_progress")
            self._end(batch, "processed")
            return self._as_api(batch)

    def backdate(self, batch_id: str, seconds: float) -> dict:
        """Move a batch ``seconds`` back in time, as if created that much earlier (and ended or canceled that
        much earlier, when it was): past 24 hours one still processing ends expired, past 29 days it is archived."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ValueError("seconds is a number of seconds, 0 or more")
        shift = timedelta(seconds=seconds)
        with self._lock:
            batch = self._observed(batch_id)
            batch.created_at -= shift
            if batch.ended_at is not None:
                batch.ended_at -= shift
            if batch.cancel_initiated_at is not None:
                batch.cancel_initiated_at -= shift
            return self._as_api(self._observed(batch_id))

    def all(self) -> list[dict]:
        """Every batch, oldest first: the API object, its ``custom_ids`` and ``requests``, and its ``results``
        by custom_id (None until it has ended)."""
        with self._lock:
            described = []
            for batch in self._batches:
                self._advance(batch)
                described.append(
                    {
                        **self._as_api(batch),
                        "custom_ids": [request["custom_id"] for request in batch.requests],
                        "requests": [dict(request) for request in batch.requests],
                        "results": None if batch.results is None else dict(batch.results),
                    }
                )
            return described

    # --- the life of a batch (callers hold the lock) -----------------------------------------------

    def _observed(self, batch_id: str) -> _Batch:
        batch = next((batch for batch in self._batches if batch.id == batch_id), None)
        if batch is None:
            raise BatchNotFound(f"batch {batch_id} not found")
        self._advance(batch)
        return batch

    def _advance(self, batch: _Batch) -> None:
        if batch.processing_status == "canceling":
            self._end(batch, "canceled")
        elif batch.processing_status == "in_progress":
            if self._now() >= batch.expires_at:
                self._end(batch, "expired", at=batch.expires_at)
            elif self._clock() >= batch.due:
                self._end(batch, "processed")

    def _end(self, batch: _Batch, how: str, *, at: datetime | None = None) -> None:
        results = {}
        for request in batch.requests:
            custom_id = request["custom_id"]
            scripted = self.outcomes.pop(custom_id, None)
            if scripted is not None:
                results[custom_id] = scripted
            elif how != "processed":
                results[custom_id] = {"type": how}
            else:
                problem = params_problem(request["params"])
                if problem is not None:
                    results[custom_id] = errored(problem)
                else:
                    results[custom_id] = {"type": "succeeded", "message": self._reply(request["params"])}
        batch.results = results
        batch.processing_status = "ended"
        batch.ended_at = at or self._now()

    def _as_api(self, batch: _Batch) -> dict:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch.results is None:
            counts["processing"] = len(batch.requests)
        else:
            for result in batch.results.values():
                counts[result["type"]] += 1
        ended = batch.processing_status == "ended"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.processing_status,
            "request_counts": counts,
            "ended_at": _timestamp(batch.ended_at),
            "created_at": _timestamp(batch.created_at),
            "expires_at": _timestamp(batch.expires_at),
            "archived_at": _timestamp(batch.archived_at(self._now())),
            "cancel_initiated_at": _timestamp(batch.cancel_initiated_at),
            "results_url": f"{self.base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }


def _checked_requests(body: dict) -> list[dict]:
    """The batch's requests as the API checks them at creation: the envelope, not the params."""
    extra = sorted(set(body) - {"requests"})
    if extra:
        raise BatchRequestError(f"{extra[0]}: Extra inputs are not permitted")
    requests = body.get("requests")
    if not isinstance(requests, list):
        raise BatchRequestError("requests: Field required: a list of {custom_id, params}")
    if not requests:
        raise BatchRequestError("requests: List should have at least 1 item")
    if len(requests) > MAX_REQUESTS:
        raise BatchRequestError(f"requests: List should have at most {MAX_REQUESTS} items, not {len(requests)}")
    first_use: dict[str, int] = {}
    for index, request in enumerate(requests):
        where = f"requests.{index}"
        if not isinstance(request, dict):
            raise BatchRequestError(f"{where}: Input should be a valid dictionary")
        extra = sorted(set(request) - {"custom_id", "params"})
        if extra:
            raise BatchRequestError(f"{where}.{extra[0]}: Extra inputs are not permitted")
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str) or not CUSTOM_ID.fullmatch(custom_id):
            raise BatchRequestError(
                f"{where}.custom_id: String should match pattern '{CUSTOM_ID.pattern}' (got {custom_id!r})"
            )
        if custom_id in first_use:
            raise BatchRequestError(
                f"{where}.custom_id: {custom_id!r} is already used by requests.{first_use[custom_id]}; "
                "custom_id must be unique within a batch"
            )
        first_use[custom_id] = index
        if not isinstance(request.get("params"), dict):
            raise BatchRequestError(f"{where}.params: Field required: the Messages API parameters as an object")
    return [{"custom_id": request["custom_id"], "params": request["params"]} for request in requests]


def _list_limit(limit: str | None) -> int:
    if limit is None:
        return LIST_LIMIT_DEFAULT
    if not limit.isdigit() or not 1 <= int(limit) <= LIST_LIMIT_MAX:
        raise BatchRequestError(f"limit: must be an integer from 1 to {LIST_LIMIT_MAX} (got {limit!r})")
    return int(limit)


def _shuffled(lines: list[dict], batch_id: str) -> list[dict]:
    """``lines`` in an order other than the requests' (when there are two or more), the same on every read,
    so a client that pairs results with requests by position fails here rather than in production."""
    order = list(lines)
    random.Random(batch_id).shuffle(order)
    if len(order) > 1 and order == lines:
        order = order[1:] + order[:1]
    return order
