"""Anthropic's Message Batches through the official SDK: submit a run's requests at half the price, see
where a batch stands, and read its results as a stream.

What this relies on, from the SDK (anthropic/resources/messages/batches.py, types/messages/*batch*)
and platform.claude.com/docs/en/api/messages/batches: ``create(requests=[{custom_id, params}])``
answers at once with the batch ``in_progress``; ``retrieve`` gives ``processing_status`` (in_progress,
canceling, ended) and ``request_counts``; ``list`` returns the most recently created first, page by
page; ``results`` streams one JSON line per request once the batch has ended, in no particular order,
each ``succeeded`` (a Message), ``errored`` (an error response), ``canceled`` or ``expired``.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anthropic

from braintrust_ops.clients.claude import SDK_HTTP, SERVICE, ToolReply, anthropic_errors, tool_reply
from braintrust_ops.conf import secret_values
from braintrust_ops.exceptions import PermanentServiceError, TransientServiceError
from braintrust_ops.printable import printable
from braintrust_ops.redaction import redact


@dataclass(frozen=True)
class BatchState:
    batch_id: str
    ended: bool
    created_at: datetime
    expires_at: datetime | None
    ended_at: datetime | None
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
        self._sdk = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)

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
        with anthropic_errors(self.model):
            return _state(self._sdk.messages.batches.create(requests=requests))  # type: ignore[arg-type]

    def retrieve(self, batch_id: str) -> BatchState | None:
        """Where the batch stands; None when Anthropic knows no such batch (deleted, or never ours)."""
        try:
            with anthropic_errors(self.model):
                return _state(self._sdk.messages.batches.retrieve(batch_id))
        except PermanentServiceError as exc:
            if exc.status == 404:
                return None
            raise

    def created_since(self, since: datetime) -> Iterator[BatchState]:
        """The account's batches created at or after ``since``, newest first (the list's own order)."""
        with anthropic_errors(self.model):
            for batch in self._sdk.messages.batches.list(limit=100):
                if batch.created_at < since:
                    return
                yield _state(batch)

    def results(self, batch_id: str, *, tool_name: str) -> Iterator[BatchOutcome]:
        """The ended batch's results, read line by line: never all of them in memory."""
        try:
            with anthropic_errors(self.model):
                for line in self._sdk.messages.batches.results(batch_id):
                    yield _outcome(line, tool_name)
        except (SDK_HTTP.HTTPError, ValueError) as exc:
            # A stream cut off or garbled mid-way (ValueError: the JSON decoder's). What was read is stored;
            # the batch stays open and the next run reads its results again.
            raise TransientServiceError(
                f"The results of batch {batch_id} broke off while being read ({type(exc).__name__}); the next run "
                "reads them again.",
                service=SERVICE,
            ) from exc


def _state(batch) -> BatchState:
    counts = batch.request_counts
    return BatchState(
        batch_id=batch.id,
        ended=batch.processing_status == "ended",
        created_at=batch.created_at,
        expires_at=batch.expires_at,
        ended_at=batch.ended_at,
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
