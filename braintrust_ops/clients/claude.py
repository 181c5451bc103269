"""The Anthropic boundary: one forced tool call per log, through the official SDK.

The SDK retries 429, 5xx and 529 itself and honours retry-after; this module sets its bounds, paces
every attempt through the run's shared ``RateLimiter`` (``_PacedAnthropic``: the same hooks in anthropic
0.x and 2.x), and translates what is left into the app's exceptions, split
the way the run needs them: the service failing (``TransientServiceError``: it says nothing about the
log), the log's own request refused (``LogRefused``: a 400 on its content), and the run's setup wrong
(``AuthenticationFailed``, ``PermanentServiceError`` 404: every other call would fail the same way).
"""

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import anthropic
from anthropic.types import Message, ToolParam

from braintrust_ops.conf import OpsConfig, secret_values
from braintrust_ops.exceptions import (
    AuthenticationFailed,
    InvalidReply,
    PermanentServiceError,
    TransientServiceError,
)
from braintrust_ops.printable import printable
from braintrust_ops.rate_limiter import RateLimiter
from braintrust_ops.redaction import redact_exception

SERVICE = "Anthropic"
UNREADABLE_REPLY = "Anthropic's reply could not be read as a Message."
# About four characters a token: the limiter's estimate of a request's input tokens.
CHARS_PER_TOKEN = 4


class LogRefused(PermanentServiceError):
    """Anthropic refused this log's request as it is (HTTP 400 or 413): the log's own fault."""


class RunStopping(Exception):
    """Raised instead of starting an attempt once the run is stopping. Raised before the SDK sends, not
    inside its HTTP client, so neither SDK retries it or wraps it in APIConnectionError (``_PacedAnthropic``)."""


def _sdk_http_library() -> ModuleType:
    """The HTTP library the installed SDK is built on: httpx under anthropic 0.x, httpx2 under 1.x and later
    (each release's Requires-Dist). ``anthropic.DefaultHttpxClient`` subclasses that library's ``Client``
    (``anthropic/_base_client.py``, ``class _DefaultHttpxClient(httpx.Client)`` or ``(httpx2.Client)``), and
    the package is the first part of its module, as the SDK's own ``_reject_httpx_object`` reads it."""
    client = next(cls for cls in anthropic.DefaultHttpxClient.__mro__ if cls.__name__ == "Client")
    return sys.modules[client.__module__.partition(".")[0]]


#: httpx or httpx2, whichever the installed SDK uses: its errors surface as they are mid-stream.
SDK_HTTP = _sdk_http_library()


def unredirected_http_client(**options: Any) -> Any:
    """The SDK's own HTTP client, with its defaults, that hands a redirect back instead of following it.

    Both SDKs' ``DefaultHttpxClient`` follow redirects (``_base_client.py``, ``_DefaultHttpxClient.__init__``:
    ``kwargs.setdefault("follow_redirects", True)``, anthropic 0.85 and 2.16), up to 20 hops inside one attempt
    (httpx's and httpx2's ``DEFAULT_MAX_REDIRECTS``), and the SDK then retries the TooManyRedirects as a
    connection error: a redirect loop on /v1/messages cost 63 requests at max_retries=2. Anthropic's API
    documents no redirect, so one means the base URL, or a proxy on the way, is not Anthropic's API; a POST
    followed through a 301 or 302 would even arrive as a GET. Unfollowed, the SDK raises the 3xx as an
    APIStatusError and does not retry it (``SyncAPIClient._should_retry``: 408, 409, 429, 5xx or
    ``x-should-retry``): one request, and ``anthropic_errors`` says which setting to check."""
    return anthropic.DefaultHttpxClient(follow_redirects=False, **options)


@dataclass(frozen=True)
class ToolReply:
    """What came back: the forced tool's input (None when Claude answered without the tool)."""

    tool_input: Any
    stop_reason: str | None
    input_tokens: int
    output_tokens: int


class _PacedAnthropic(anthropic.Anthropic):
    """The SDK's client, where every attempt, the SDK's retries included, waits its turn at the run's
    shared limiter, and every reply tells the limiter what it said. The same two hooks in anthropic 0.x
    and 2.x (``anthropic/_base_client.py``, ``SyncAPIClient``):

    - ``_prepare_request`` runs once per attempt, after the request is built and before it is sent: in
      0.x in ``request()``'s retry loop, outside its ``try`` around ``self._client.send``; in 2.x in
      ``_attempt_request``, also before that ``try``, and its retry loop retries only the SDK's own
      connection and status errors (``_should_retry_exception``). So RunStopping raised here ends the call
      at once on both. It is the hook the SDK's Bedrock and Vertex clients sign each attempt in
      (``anthropic/lib/bedrock/_client.py``, ``lib/vertex/_client.py``).
    - the HTTP client's ``response`` event hook runs once per response received (httpx and httpx2
      ``_client.py``, ``Client._send_handling_redirects``), 429s and 5xx included. It is installed on
      ``anthropic.DefaultHttpxClient``, the SDK's own client class with its defaults (limits, keep-alive)
      but redirects (``unredirected_http_client``); the SDK's ``timeout`` and ``max_retries`` still apply,
      per request, in its own loop.
    """

    def __init__(self, *, limiter: RateLimiter, stop: threading.Event, **options: Any):
        self._limiter = limiter
        self._stop = stop
        http_client = unredirected_http_client(event_hooks={"response": [self._observe]})
        super().__init__(http_client=http_client, **options)

    def _prepare_request(self, request: Any) -> None:
        if not self._limiter.acquire(_input_token_estimate(request.content), stop=self._stop):
            raise RunStopping("the run is stopping")

    def _observe(self, response: Any) -> None:
        self._limiter.observe(response.status_code, response.headers)


def _input_token_estimate(content: bytes) -> float:
    """About how many input tokens a Messages request carries: its system prompt and messages."""
    try:
        body = json.loads(content)
    except ValueError:
        return 0.0
    body = body if isinstance(body, dict) else {}
    return (len(str(body.get("system", ""))) + len(str(body.get("messages", "")))) / CHARS_PER_TOKEN


class ClaudeClient:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        timeout: float,
        max_retries: int,
        max_output_tokens: int,
        limiter: RateLimiter | None = None,
        stop: threading.Event | None = None,
    ):
        self.model = model
        self.max_output_tokens = max_output_tokens
        self.limiter = limiter or RateLimiter()
        self.stop = stop or threading.Event()
        self._sdk = _PacedAnthropic(
            limiter=self.limiter,
            stop=self.stop,
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
        )

    @classmethod
    def from_config(cls, config: OpsConfig, **options: Any) -> "ClaudeClient":
        return cls(
            api_key=config.required("anthropic_api_key"),
            base_url=config.anthropic_base_url,
            model=config.tagging_model,
            timeout=config.claude_timeout_seconds,
            max_retries=config.claude_max_retries,
            max_output_tokens=config.claude_max_output_tokens,
            **options,
        )

    def close(self) -> None:
        self._sdk.close()

    def call_tool(self, *, system: str, user_text: str, tool: ToolParam) -> ToolReply:
        """One log's call: at most ``max_retries + 1`` requests, the SDK's own, whatever they meet.

        The SDK's retry loop is the only one (STYLE.md: one retry layer per request path). A reply that
        cannot be read is not retried: neither SDK retries it (anthropic 0.85 ``_base_client.py``,
        ``SyncAPIClient.request`` parses after its retry loop has ended; 2.16 parses inside the loop's
        ``try``, and ``_should_retry_exception`` retries only ``APIStatusError``, ``APIConnectionError`` and
        ``RetryableError``), and a loop of ours around the SDK's multiplied the two (25 requests for one log
        at max_retries=4, issue 19). Sharing one budget between the two loops would need a per-call
        ``max_retries`` (only ``with_options``, a copy of the client our paced subclass does not survive) or
        ending the SDK's loop from ``_prepare_request`` after its backoff; not retrying costs no code, and
        the log is sent again on the next run (InvalidReply is a service failure: ``services.tagging.dispatch``)."""
        try:
            message = self._create(system=system, user_text=user_text, tool=tool)
        except (anthropic.APIResponseValidationError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            # The json module's errors as they are (httpx and httpx2 ``Response.json``: ``json.loads`` of the
            # bytes, UnicodeDecodeError for bytes not UTF-8). Not ValueError: a mistake of ours is no reply.
            raise InvalidReply(UNREADABLE_REPLY, service=SERVICE) from exc
        # A 200 that is not JSON (a proxy's page) comes back as its text: both SDKs return ``response.text``
        # for a non-JSON Content-Type unless ``_strict_response_validation`` (``_response.py``,
        # ``BaseAPIResponse._parse``); JSON of another shape is built unchecked. tool_reply refuses both.
        return tool_reply(message, tool["name"])

    def _create(self, *, system: str, user_text: str, tool: ToolParam) -> Message:
        with anthropic_errors(self.model):
            params = tool_params(
                model=self.model, max_tokens=self.max_output_tokens, system=system, user_text=user_text, tool=tool
            )
            return self._sdk.messages.create(**params)


def tool_params(*, model: str, max_tokens: int, system: str, user_text: str, tool: ToolParam) -> dict[str, Any]:
    """One log's request, the same whether it is sent now or in a Message Batch."""
    return {
        "model": model,
        "max_tokens": max_tokens,
        "system": system,
        "messages": [{"role": "user", "content": user_text}],
        "tools": [tool],
        "tool_choice": {"type": "tool", "name": tool["name"]},
    }


def tool_reply(message: object, tool_name: str) -> ToolReply:
    """What a Message says, for the forced tool: its input (None without the tool), stop reason, usage.

    InvalidReply when it is no Message of the documented shape. Neither SDK checks a reply: a Message, and
    each line of a batch's results, is built with ``construct_type_unchecked`` (``_models.py``; the JSONL
    decoder, ``_decoders/jsonl.py``, in anthropic 0.85 and 2.16), so a field may be missing, null or of
    another type, and reading it must not raise an AttributeError out of the run."""
    content = getattr(message, "content", None)
    if not isinstance(message, Message) or not isinstance(content, list):
        raise InvalidReply(UNREADABLE_REPLY, service=SERVICE)
    if not all(isinstance(getattr(block, "type", None), str) for block in content):
        # A block that is no block is a reply that cannot be read, not an answer without the tool (which
        # costs the log an attempt).
        raise InvalidReply(UNREADABLE_REPLY, service=SERVICE)
    tool_input = next(
        (
            getattr(block, "input", None)
            for block in content
            if getattr(block, "type", None) == "tool_use" and getattr(block, "name", None) == tool_name
        ),
        None,
    )
    stop_reason = getattr(message, "stop_reason", None)
    # No usage at all counts nothing; a usage without its counts is no usage the API sends.
    usage = getattr(message, "usage", None)
    return ToolReply(
        tool_input=tool_input,
        stop_reason=stop_reason if isinstance(stop_reason, str) else None,
        input_tokens=0 if usage is None else _token_count(getattr(usage, "input_tokens", None)),
        output_tokens=0 if usage is None else _token_count(getattr(usage, "output_tokens", None)),
    )


def _token_count(value: object) -> int:
    # A count that is no count would be summed into the run's cost: the reply is unusable, not free.
    if not is_count(value):
        raise InvalidReply(UNREADABLE_REPLY, service=SERVICE)
    return value  # type: ignore[return-value]  # is_count checked it is an int


def is_count(value: object) -> bool:
    """A count as the API sends one: a JSON integer, never negative (not a bool, Python's int subclass)."""
    return type(value) is int and value >= 0


@contextmanager
def anthropic_errors(model: str, *, batch: str | None = None) -> Iterator[None]:
    """The SDK's errors, after its retries, as the app's: what failed, whose fault, what to do.

    ``batch``: what becomes of the work when a Message Batches call fails for a while (the batch stays open,
    or its logs stay queued, and the next run tries again), said after the failure; a 400 or 413 there is
    the batch's, not one log's."""
    try:
        with _batch_errors(model, batch), _redirected(batch), _redacted():
            yield
    except anthropic.AuthenticationError as exc:
        raise AuthenticationFailed(
            "Anthropic refused the API key (HTTP 401). Check ANTHROPIC_API_KEY.", service=SERVICE, status=401
        ) from exc
    except anthropic.PermissionDeniedError as exc:
        raise AuthenticationFailed(
            f"Anthropic denied this key access to model {model} (HTTP 403).", service=SERVICE, status=403
        ) from exc
    except anthropic.APITimeoutError as exc:
        raise TransientServiceError("Claude did not answer in time, even after retries.", service=SERVICE) from exc
    except anthropic.APIConnectionError as exc:
        raise TransientServiceError("Could not reach Anthropic, even after retries.", service=SERVICE) from exc
    except anthropic.APIStatusError as exc:
        status = exc.status_code
        if status in (408, 409, 429) or status >= 500:
            raise TransientServiceError(
                f"Anthropic kept answering HTTP {status} ({_error_type(exc)}) after retries.",
                service=SERVICE,
                status=status,
            ) from exc
        if status in (400, 413):
            # The error's type and message apart too: the tagging loop compares refusals by their shape
            # (error_signature), to tell the run's setup refused on every log from one log refused alone.
            raise LogRefused(
                f"Anthropic refused this log's request with HTTP {status} ({_error_type(exc)}): {_error_message(exc)}",
                service=SERVICE,
                status=status,
                error_type=_error_type(exc),
                error_message=_error_message(exc),
            ) from exc
        raise PermanentServiceError(
            f"Anthropic rejected the request with HTTP {status} ({_error_type(exc)}); "
            f"check BRAINTRUST_OPS_TAGGING_MODEL ({model}).",
            service=SERVICE,
            status=status,
        ) from exc


@contextmanager
def _redacted() -> Iterator[None]:
    """A server may echo the request's x-api-key in its error body: the SDK's error (its message and body)
    is redacted before anything reads or cuts it, so no message, log line, stored error or traceback shows it."""
    try:
        yield
    except anthropic.APIError as exc:
        redact_exception(exc, secret_values())
        raise


@contextmanager
def _redirected(batch: str | None) -> Iterator[None]:
    """A 3xx (``unredirected_http_client``): the address the requests go to is not Anthropic's API, whatever
    the model or the request; for a batch call, what becomes of the batch is said after it."""
    try:
        yield
    except anthropic.APIStatusError as exc:
        status = exc.status_code
        if not 300 <= status < 400:
            raise
        raise PermanentServiceError(
            f"Anthropic's address answered HTTP {status}, a redirect{_redirect_target(exc)}, which Anthropic's API "
            "never sends: check ANTHROPIC_BASE_URL and any proxy on the way" + (f"; {batch}" if batch else "."),
            service=SERVICE,
            status=status,
        ) from exc


def _redirect_target(exc: anthropic.APIStatusError) -> str:
    """Where the redirect leads, as " to <host>": not its path or query, which may carry a token."""
    try:
        host = urlsplit(exc.response.headers.get("location", "")).hostname
    except ValueError:
        host = None
    return f" to {printable(host, limit=100)}" if host else ""


@contextmanager
def _batch_errors(model: str, batch: str | None) -> Iterator[None]:
    """A Message Batches call's failures, saying what becomes of the batch; 401 and 403 as any call's."""
    if batch is None:
        yield
        return
    try:
        yield
    except anthropic.APIStatusError as exc:
        status = exc.status_code
        if status in (401, 403):
            raise
        if status in (408, 409, 429) or status >= 500:
            raise TransientServiceError(
                f"Anthropic kept answering HTTP {status} ({_error_type(exc)}) to a Message Batches call after "
                f"retries; {batch}",
                service=SERVICE,
                status=status,
            ) from exc
        raise PermanentServiceError(
            f"Anthropic refused the Message Batches call with HTTP {status} ({_error_type(exc)}): "
            f"{_error_message(exc)}; check BRAINTRUST_OPS_TAGGING_MODEL ({model}) and ANTHROPIC_BASE_URL, "
            "then run again.",
            service=SERVICE,
            status=status,
        ) from exc
    except anthropic.APIConnectionError as exc:
        kind = "did not answer in time" if isinstance(exc, anthropic.APITimeoutError) else "could not be reached"
        raise TransientServiceError(
            f"Anthropic {kind} for a Message Batches call, even after retries; {batch}", service=SERVICE
        ) from exc


def _error(exc: anthropic.APIStatusError) -> dict:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    return error if isinstance(error, dict) else {}


def _error_type(exc: anthropic.APIStatusError) -> str:
    return printable(_error(exc).get("type") or type(exc).__name__, limit=100)


def _error_message(exc: anthropic.APIStatusError) -> str:
    return printable(_error(exc).get("message") or "", limit=300)
