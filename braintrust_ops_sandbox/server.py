"""The sandbox HTTP server: Braintrust's REST subset and Anthropic's Messages and Message Batches APIs
on one loopback port.

Requests go through real sockets, so the commands' SDKs, retries and timeouts run as in production.
A small control API under ``/_sandbox/`` lets a separate process (the demo, a benchmark, a person with
curl) add faults, set limits, read counters and put together a case by hand. Bodies are JSON; a bad
control request gets 400 ``{"error": ...}``.

Faults, limits, counters:

- ``POST/GET/DELETE /_sandbox/faults``: add a fault rule (``{"route", "kind", ...}``), list, clear.
- ``POST/GET/DELETE /_sandbox/rate_limits``: ``{"route", "requests", "per_seconds", "retry_after"}``.
- ``GET/PUT /_sandbox/request_size_limits``: ``{"route", "bytes"}`` (``bytes`` null: no limit).
- ``PUT /_sandbox/switches``: ``{"btql_cursor_on_last_page": bool, "size_limit_status": 413 | 400}``.
- ``GET /_sandbox/requests``, ``GET /_sandbox/rate_limited``: counts per route.
- ``PUT /_sandbox/claude_latency`` ``{"seconds"}``; ``GET /_sandbox/datasets/<id>/rows``.
- ``GET /_sandbox/experiments``: every experiment with its ``events``; ``DELETE`` clears them.
- ``PUT /_sandbox/logs/<id>/tags`` ``{"tags", "reviewed_by"}``: what a reviewer does in the log view (the
  log gets a new ``_xact_id``; ``reviewed_by`` goes into its metadata). ``GET /_sandbox/logs`` lists them.

Claude under pressure (``claude_limits.py`` says how the buckets and headers work):

- ``PUT /_sandbox/claude_limits`` ``{"requests_per_minute", "input_tokens_per_minute",
  "output_tokens_per_minute", "time_scale", "retry_after"}`` (each limit optional; missing or null: not
  limited; buckets start full); ``GET`` answers those settings with ``"accepted"`` and ``"refused"`` (429)
  counts of messages requests; ``DELETE`` lifts every limit (the counts stay).
- ``PUT /_sandbox/claude_outage`` ``{"kind": "overloaded" | "server_error" | "unreachable" | null}``:
  529 ``overloaded_error`` / 500 ``api_error`` / connection closed unanswered on every messages
  request, until ``null``; ``GET`` answers ``{"kind", "requests"}`` (requests received in that outage).

Message batches (``batches.py`` says what a batch does and which sources each rule rests on):

- ``GET /_sandbox/batches``: ``{"processing_seconds", "outcomes", "batches"}``, each batch the API
  object plus ``custom_ids``, ``requests`` and ``results`` (null until it has ended).
- ``PUT /_sandbox/batches`` ``{"processing_seconds"}``: how long a new batch stays ``in_progress``.
- ``POST /_sandbox/batches/outcomes`` ``{"<custom_id>": result, ...}`` scripts those requests' results
  (``{"type": "errored", "error": {"type": "error", "error": {"type", "message"}}}``, ``{"type":
  "expired"}``, ``{"type": "canceled"}``), each used once; ``GET`` lists them, ``DELETE`` clears them.
- ``POST /_sandbox/batches/<id>/expire``: a batch still processing ends now, its requests ``expired``.
- ``POST /_sandbox/batches/<id>/end_processing``: an ``in_progress`` batch ends now, as when its
  processing time is up (its results worked out as usual).
- ``POST /_sandbox/batches/<id>/backdate`` ``{"seconds"}``: the batch as if created that much earlier;
  past 24 hours one still processing ends expired, past 29 days it is archived (its results 404).
- Requests per route (``batches_create``, ``batches_retrieve``, ``batches_list``, ``batches_cancel``,
  ``batches_results``) are in ``GET /_sandbox/requests`` like the others.

A case by hand (each POST takes one object, a list of them, or ``{"<kind>": [...]}``; answers 201 with
what was stored; ``GET`` lists; ``DELETE`` clears them all):

- ``/_sandbox/logs``: ``{"input", "output", "created" (RFC 3339), "id"?, any other log field}``; each is
  one root span, ingested now (an old ``created`` is a log flushed late).
- ``/_sandbox/tags``: ``{"name", "description", "project_id"?}``.
- ``/_sandbox/datasets``: ``{"name", "description", "project_id"?}``.
- ``/_sandbox/claude_replies``: Claude's next replies, each used once in order, then the keyword rule
  resumes: ``{"tool_input": {...}}`` or ``{"text": "..."}``, optional ``"stop_reason"``.

For example, a log that the rule would tag ``halacha``, and Claude told to answer it with a tag outside
the enum::

    curl -X POST http://127.0.0.1:8765/_sandbox/tags -d '{"name": "halacha", "description": "dataset-tagging"}'
    curl -X POST http://127.0.0.1:8765/_sandbox/logs \
         -d '[{"id": "log-1", "input": "Is coffee kosher?", "output": "Yes.", "created": "2026-11-24T10:00:00Z"}]'
    curl -X POST http://127.0.0.1:8765/_sandbox/claude_replies -d '[{"tool_input": {"tags": ["nope"]}}]'

Each request on a route meets, in order: (messages only) the outage, the rate limit, the body size
limit, the route's faults, then the route itself. On the messages route, the route itself checks the
key, the body and its tools (400 ``invalid_request_error``, see ``claude_tools.py``), then Claude's
rate limits (429 ``rate_limit_error``), then answers; replies that get that far carry the
``anthropic-ratelimit-*`` headers of the limits that are set. A batches route checks the key, then
answers (a batch's params are checked when it ends, as the real API does; neither Claude's rate limits
nor an outage touch batches). Errors on Anthropic's routes take Anthropic's shape.
"""

import json
import logging
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from braintrust_ops_sandbox import btql, cursors, fake_claude, openapi
from braintrust_ops_sandbox.batches import Batches, BatchNotFound, BatchRequestError
from braintrust_ops_sandbox.claude_limits import ClaudeRateLimits
from braintrust_ops_sandbox.constants import (
    ANTHROPIC_KEY,
    BRAINTRUST_KEY,
    KNOWN_PROJECTS,
    PROJECT_NAMES,
    SANDBOX_ORG_ID,
)
from braintrust_ops_sandbox.experiments import ExperimentRequestError
from braintrust_ops_sandbox.faults import ANTHROPIC_ROUTES, ROUTES, FaultRules
from braintrust_ops_sandbox.limits import RateLimits, default_size_limits
from braintrust_ops_sandbox.state import SandboxState, encode_json

# Standard logging, not structlog: a sandbox in a bare process (a benchmark's) has no structlog
# configuration, and structlog's default would print every request to stdout.
logger = logging.getLogger(__name__)
INSERT_SCHEMA = openapi.request_pointer("/v1/dataset/{dataset_id}/insert", "post")
LOGS_INSERT_SCHEMA = openapi.request_pointer("/v1/project_logs/{project_id}/insert", "post")
LOGS_FEEDBACK_SCHEMA = openapi.request_pointer("/v1/project_logs/{project_id}/feedback", "post")
EXPERIMENT_CREATE_SCHEMA = openapi.request_pointer("/v1/experiment", "post")
EXPERIMENT_INSERT_SCHEMA = openapi.request_pointer("/v1/experiment/{experiment_id}/insert", "post")
DRAIN_CHUNK = 64 * 1024
# Results lines go out in chunks of about this size: streamed, without a syscall per line.
STREAM_CHUNK = 64 * 1024


class HTTPFailure(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _route(method: str, path: str) -> tuple[str, str | None] | None:
    """(route name, object id) for a Braintrust or Anthropic endpoint, None for anything else. The
    object id is the dataset's, for ``project`` the project's, for a batches route the batch's."""
    parts = [part for part in path.split("/") if part]
    if parts[:3] == ["v1", "messages", "batches"]:
        return _batches_route(method, parts[3:])
    if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "project"]:
        return "project", parts[2]
    if method == "GET" and parts == ["v1", "project_tag"]:
        return "project_tag", None
    if method == "GET" and parts == ["v1", "dataset"]:
        return "dataset_list", None
    if method == "POST" and parts == ["btql"]:
        return "btql", None
    if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "dataset"] and parts[3] in ("insert", "fetch"):
        return f"dataset_{parts[3]}", parts[2]
    if method == "POST" and parts == ["v1", "messages"]:
        return "messages", None
    if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "project_logs"] and parts[3] == "insert":
        return "project_logs_insert", parts[2]
    if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "project_logs"] and parts[3] == "feedback":
        return "project_logs_feedback", parts[2]
    if parts == ["v1", "experiment"]:
        return {"POST": ("experiment_create", None), "GET": ("experiment_list", None)}.get(method)
    if len(parts) == 4 and parts[:2] == ["v1", "experiment"]:
        return {
            ("POST", "insert"): ("experiment_insert", parts[2]),
            ("GET", "summarize"): ("experiment_summarize", parts[2]),
        }.get((method, parts[3]))
    return None


def _batches_route(method: str, rest: list[str]) -> tuple[str, str | None] | None:
    """Routes under /v1/messages/batches (SDK ``resources/messages/batches.py``; results at the batch's
    ``results_url``, which the sandbox puts at ``/v1/messages/batches/{id}/results`` as the real API does)."""
    if not rest:
        return {"POST": ("batches_create", None), "GET": ("batches_list", None)}.get(method)
    if method == "GET" and len(rest) == 1:
        return "batches_retrieve", rest[0]
    if method == "POST" and len(rest) == 2 and rest[1] == "cancel":
        return "batches_cancel", rest[0]
    if method == "GET" and len(rest) == 2 and rest[1] == "results":
        return "batches_results", rest[0]
    return None


def _project_filter(query: dict) -> str | None:
    project_id = (query.get("project_id") or [None])[0]
    if project_id is None:
        return None
    try:
        return str(uuid.UUID(project_id))
    except ValueError:
        raise HTTPFailure(400, f"project_id {project_id!r} is not a valid UUID") from None


def _project(project_id: str) -> dict:
    """GET /v1/project/{id}: like the real API, an unknown project and one the key cannot read look the same."""
    if project_id not in KNOWN_PROJECTS:
        raise HTTPFailure(403, f"project {project_id} not found or not accessible with this key")
    return {
        "id": project_id,
        "org_id": SANDBOX_ORG_ID,
        "name": PROJECT_NAMES[project_id],
        "created": "2025-01-01T00:00:00.000Z",
        "deleted_at": None,
        "user_id": None,
        "settings": None,
    }


def _page_after(objects: list[dict], query: dict) -> list[dict]:
    """Braintrust's list pagination: objects after ``starting_after``, at most ``limit``."""
    starting_after = (query.get("starting_after") or [None])[0]
    if starting_after:
        ids = [item["id"] for item in objects]
        objects = objects[ids.index(starting_after) + 1 :] if starting_after in ids else []
    limit = (query.get("limit") or [None])[0]
    if limit is not None:
        if not limit.isdigit() or int(limit) < 1:
            raise HTTPFailure(400, f"limit {limit!r} must be a positive integer")
        objects = objects[: int(limit)]
    return objects


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "braintrust-ops-sandbox"
    # An idle keep-alive connection is closed after this, so stopping the server never waits long.
    timeout = 30
    sandbox: "Sandbox"
    # Set per request by the "partial" fault; the handler object lives as long as a keep-alive connection.
    _cut_reply = False

    def setup(self):
        super().setup()
        # Headers and body leave in two writes; with Nagle's algorithm the second waits for the
        # client's delayed ACK (40 ms on Linux) on every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        logger.debug("sandbox request: %s", format % args)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    # --- plumbing -------------------------------------------------------------------------------

    def _content_length(self) -> int:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            # The body's end is unknown, so the connection cannot carry another request.
            self.close_connection = True
            raise HTTPFailure(400, "Content-Length is not a valid length")
        return length

    def _read(self, length: int) -> bytes:
        return self.rfile.read(length) if length else b""

    def _drain(self, length: int) -> None:
        """Read and discard a body not worth keeping, so the next request on this connection starts clean."""
        while length > 0:
            chunk = self.rfile.read(min(length, DRAIN_CHUNK))
            if not chunk:
                break
            length -= len(chunk)

    def _json_body(self, raw: bytes) -> dict:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise HTTPFailure(400, "request body is not JSON") from None
        if not isinstance(body, dict):
            raise HTTPFailure(400, "request body must be a JSON object")
        return body

    def _send(
        self, status: int, payload: bytes, headers: dict | None = None, content_type: str = "application/json"
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self._cut_reply:
                # The "partial" fault: the headers promised the whole body; half of it comes, then the close.
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                return self._drop()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test); nothing to answer.
            self.close_connection = True

    def _send_json(self, status: int, data: object, headers: dict | None = None) -> None:
        self._send(status, encode_json(data), headers)

    def _send_error(self, route: str | None, status: int, message: str, headers: dict | None = None) -> None:
        if route in ANTHROPIC_ROUTES:
            self._send_json(status, fake_claude.error_body(status, message), headers)
        else:
            self._send_json(status, {"error": message}, headers)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- dispatch -------------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        self._cut_reply = False
        url = urlsplit(self.path)
        matched = _route(method, url.path)
        try:
            length = self._content_length()
        except HTTPFailure as failure:
            return self._send_error(matched and matched[0], failure.status, failure.message)
        if matched is not None:
            return self._endpoint(*matched, url.query, length)
        raw = self._read(length)
        if url.path.startswith("/_sandbox/"):
            return self._control(method, url.path, raw)
        self._send_json(404, {"error": f"no such endpoint: {method} {url.path}"})

    def _endpoint(self, route: str, object_id: str | None, query: str, length: int) -> None:
        self.sandbox._record(route)
        if route == "messages" and self._answered_by_outage(length):
            return
        if self._refused_by_limits(route, length):
            return
        raw = self._read(length)
        fault = self.sandbox.faults.take(route)
        if fault is not None and self._play_fault(route, fault):
            return
        try:
            if route == "messages":
                self._messages(raw)
            elif route.startswith("batches_"):
                self._batches(route, object_id, parse_qs(query), raw)
            else:
                self._braintrust(route, object_id, parse_qs(query), raw)
        except HTTPFailure as failure:
            self._send_error(route, failure.status, failure.message)

    def _refused_by_limits(self, route: str, length: int) -> bool:
        """Answer a request over the route's rate or size limit; its body is drained, unread."""
        sandbox = self.sandbox
        refusal = sandbox.rate_limits.admit(route)
        if refusal is not None:
            self._drain(length)
            sandbox._record_rate_limited(route)
            headers = {} if refusal.retry_after is None else {"Retry-After": str(refusal.retry_after)}
            self._send_error(route, 429, f"rate limit exceeded on {route}", headers)
            return True
        limit = sandbox.request_size_limits.get(route)
        if limit is not None and length > limit:
            self._drain(length)
            message = f"request body of {length} bytes is over the limit of {limit} bytes"
            if sandbox.size_limit_status == 400:  # as some proxies answer: a 400 that says why
                message = f"Request too large: {message}"
            self._send_error(route, sandbox.size_limit_status, message)
            return True
        return False

    def _answered_by_outage(self, length: int) -> bool:
        """During a ``claude_outage``, every messages request gets the outage's answer (or none at all)."""
        kind = self.sandbox._claude_outage_hit()
        if kind is None:
            return False
        self._drain(length)
        if kind == "unreachable":
            self._drop()
        else:
            status, message = OUTAGE_REPLIES[kind]
            self._send_error("messages", status, message)
        return True

    def _play_fault(self, route: str, fault) -> bool:
        """Apply ``fault``; True when it has answered the request (or dropped it) itself."""
        if fault.kind == "partial":
            self._cut_reply = True  # the route answers as usual, and _send cuts the reply in half
            return False
        if fault.kind == "latency":
            time.sleep(fault.delay)
            return False
        if fault.kind == "drop":
            self._drop()
        elif fault.kind == "invalid_json":
            self._send(200, b'{"data": [{"id": "truncat')
        elif fault.kind == "proxy_page":
            self._send(200, b"<html><body>Gateway says hello</body></html>", content_type="text/html; charset=utf-8")
        elif fault.kind == "not_utf8":
            self._send(200, b"\x1f\x8b\x08\x00\xff\xfe not UTF-8")
        elif fault.kind == "redirect":
            self._send(fault.status, b"", {"Location": fault.location or self.path})
        elif fault.kind == "reply" and route == "batches_results" and isinstance(fault.body, list):
            self._send_jsonl(fault.body)  # a results file: each item one of its lines
        elif fault.kind == "reply":
            self._send_json(200, fault.body)
        elif fault.kind == "echo_credentials":
            sent = f"Authorization: {self.headers.get('Authorization')!r}, x-api-key: {self.headers.get('x-api-key')!r}"
            self._send_error(route, fault.status, f"sandbox fault: HTTP {fault.status}; the request sent {sent}")
        elif fault.status == 200:
            # A reply that parses but lacks the list the client needs.
            self._send_json(200, {"error": "sandbox fault: an unexpected reply"})
        else:
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            self._send_error(route, fault.status, f"sandbox fault: HTTP {fault.status}", headers)
        return True

    def _braintrust(self, route: str, object_id: str | None, query: dict, raw: bytes) -> None:
        if self.headers.get("Authorization") != f"Bearer {BRAINTRUST_KEY}":
            raise HTTPFailure(401, "Invalid API key: the sandbox accepts only its own fake key")
        state = self.sandbox.state
        if route == "project":
            return self._send_json(200, _project(object_id))
        if route == "project_tag":
            return self._send_json(200, {"objects": _page_after(state.tags(_project_filter(query)), query)})
        if route == "dataset_list":
            return self._send_json(200, {"objects": _page_after(state.datasets(_project_filter(query)), query)})
        if route.startswith("experiment_"):
            return self._experiments(route, object_id, query, raw)
        body = self._json_body(raw)
        dataset_id = object_id
        if route == "btql":
            self.sandbox._record_btql_body(body)
            return self._btql(body)
        if route == "project_logs_feedback":
            _project(object_id)
            error = openapi.first_error(LOGS_FEEDBACK_SCHEMA, body)
            if error is not None:
                raise HTTPFailure(400, f"invalid feedback body: {error}")
            try:
                state.log_feedback(body["feedback"])
            except KeyError as exc:
                raise HTTPFailure(400, f"no log {exc.args[0]!r} in project {object_id}") from None
            return self._send_json(200, {"status": "success"})
        if route == "project_logs_insert":
            _project(object_id)  # an unknown project answers as GET /v1/project/{id} does
            error = openapi.first_error(LOGS_INSERT_SCHEMA, body)
            if error is not None:
                raise HTTPFailure(400, f"invalid insert body: {error}")
            return self._send_json(200, {"row_ids": state.insert_logs(object_id, body["events"])})
        if not state.has_dataset(dataset_id):
            raise HTTPFailure(404, f"dataset {dataset_id} not found")
        if route == "dataset_insert":
            # Held to the spec's request body (InsertDatasetEventRequest), as the real API validates it.
            error = openapi.first_error(INSERT_SCHEMA, body)
            if error is not None:
                raise HTTPFailure(400, f"invalid insert body: {error}")
            return self._send_json(200, {"row_ids": state.insert_rows(dataset_id, body["events"])})
        try:
            offset = cursors.decode_offset_cursor(body["cursor"]) if body.get("cursor") else 0
            limit = int(body.get("limit") or 1000)
        except (btql.BadQuery, TypeError, ValueError):
            raise HTTPFailure(400, "fetch: cursor or limit is not valid") from None
        if limit < 1:
            raise HTTPFailure(400, "fetch: limit must be at least 1")
        rows, more = state.dataset_rows_page(dataset_id, offset, limit)
        self._send_json(200, {"events": rows, "cursor": cursors.encode_offset_cursor(offset + limit) if more else None})

    def _experiments(self, route: str, experiment_id: str | None, query: dict, raw: bytes) -> None:
        """The experiment routes (``experiments.py`` says what each does); bodies held to the spec's schemas."""
        store = self.sandbox.state.experiment_store
        try:
            if route == "experiment_list":
                name = (query.get("experiment_name") or [None])[0]
                return self._send_json(
                    200, {"objects": _page_after(store.listing(_project_filter(query), name), query)}
                )
            if route == "experiment_summarize":
                comparison = (query.get("comparison_experiment_id") or [None])[0]
                summary = store.summarize(
                    experiment_id,
                    base_url=self.sandbox.url,
                    summarize_scores=(query.get("summarize_scores") or [""])[0] == "true",
                    comparison_experiment_id=comparison,
                )
                return self._send_json(200, summary)
            body = self._json_body(raw)
            schema = EXPERIMENT_CREATE_SCHEMA if route == "experiment_create" else EXPERIMENT_INSERT_SCHEMA
            error = openapi.first_error(schema, body)
            if error is not None:
                raise HTTPFailure(400, f"invalid {route.removeprefix('experiment_')} body: {error}")
            if route == "experiment_create":
                return self._send_json(200, store.create(body))
            return self._send_json(200, {"row_ids": store.insert(experiment_id, body["events"])})
        except ExperimentRequestError as exc:
            raise HTTPFailure(exc.status, str(exc)) from None

    def _btql(self, body: dict) -> None:
        try:
            query = btql.parse_request(body)
            after = None
            if query.cursor:
                after = cursors.decode_log_cursor(query.cursor, query.sort_field, query.descending)
        except btql.BadQuery as exc:
            raise HTTPFailure(400, f"BTQL: {exc}") from None
        if query.project_id not in KNOWN_PROJECTS:
            raise HTTPFailure(403, f"project {query.project_id} not found or not accessible with this key")
        page = self.sandbox.state.query_logs(query, after)
        cursor = btql.next_cursor(query, [row for row, _ in page], on_last_page=self.sandbox.btql_cursor_on_last_page)
        payload = b'{"data": [' + b", ".join(encoded for _, encoded in page) + b'], "cursor": '
        self._send(200, payload + json.dumps(cursor).encode() + b"}", {"x-bt-cursor": cursor} if cursor else None)

    def _check_anthropic_key(self) -> None:
        # The SDK sends the key as x-api-key or, in newer releases, as a bearer token.
        if ANTHROPIC_KEY not in (self.headers.get("x-api-key"), self.headers.get("Authorization", "")[7:]):
            raise HTTPFailure(401, "invalid x-api-key")

    def _messages(self, raw: bytes) -> None:
        sandbox = self.sandbox
        self._check_anthropic_key()
        body = self._json_body(raw)
        sandbox._record_claude_request(body)
        problem = fake_claude.request_problem(body)
        if problem is not None:
            raise HTTPFailure(400, problem)
        reply, decision = sandbox._claude_reply(body)
        if not decision.accepted:
            headers = dict(decision.headers)
            if decision.retry_after is not None:
                headers["retry-after"] = decision.retry_after
            return self._send_error("messages", 429, _rate_limit_message(sandbox.claude_limits, decision), headers)
        if sandbox.claude_latency:
            time.sleep(sandbox.claude_latency)
        self._send_json(200, reply, decision.headers)

    def _batches(self, route: str, batch_id: str | None, query: dict, raw: bytes) -> None:
        self._check_anthropic_key()
        batches = self.sandbox.batches
        try:
            if route == "batches_create":
                return self._send_json(200, batches.create(self._json_body(raw)))
            if route == "batches_list":
                paging = {name: (query.get(name) or [None])[0] for name in ("limit", "after_id", "before_id")}
                return self._send_json(200, batches.page(**paging))
            if route == "batches_retrieve":
                return self._send_json(200, batches.retrieve(batch_id))
            if route == "batches_cancel":
                return self._send_json(200, batches.cancel(batch_id))
            self._send_jsonl(batches.results(batch_id))
        except BatchRequestError as exc:
            raise HTTPFailure(400, str(exc)) from None
        except BatchNotFound as exc:
            raise HTTPFailure(404, str(exc)) from None

    def _send_jsonl(self, lines: list) -> None:
        """A results file, streamed: chunked transfer encoding, one JSON object a line. The "partial" fault
        sends half of its bytes and closes the connection without the final chunk."""
        encoded = [encode_json(line) + b"\n" for line in lines]
        budget = sum(map(len, encoded)) // 2 if self._cut_reply else None
        try:
            self.send_response(200)
            # The SDK asks for the file with ``Accept: application/binary`` (resources/messages/batches.py).
            self.send_header("Content-Type", "application/binary")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in _chunks(encoded, budget):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if budget is not None:
                return self._drop()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # --- control API ----------------------------------------------------------------------------

    def _control(self, method: str, path: str, raw: bytes) -> None:
        sandbox = self.sandbox
        parts = [part for part in path.split("/") if part][1:]
        try:
            if parts == ["faults"] and method == "POST":
                body = self._json_body(raw)
                return self._send_json(201, sandbox.faults.add(body.pop("route"), body.pop("kind"), **body).as_dict())
            if parts == ["faults"] and method == "DELETE":
                sandbox.faults.clear()
                return self._send_json(200, {"faults": []})
            if parts == ["faults"] and method == "GET":
                return self._send_json(200, {"faults": sandbox.faults.list()})
            if parts == ["requests"] and method == "GET":
                return self._send_json(200, sandbox.requests)
            if parts == ["rate_limited"] and method == "GET":
                return self._send_json(200, sandbox.rate_limited_counts)
            if parts == ["rate_limits"] and method == "POST":
                body = self._json_body(raw)
                sandbox.rate_limits.set(
                    body["route"],
                    requests=body["requests"],
                    per_seconds=body["per_seconds"],
                    retry_after=body.get("retry_after", True),
                )
                return self._send_json(201, {"rate_limits": sandbox.rate_limits.list()})
            if parts == ["rate_limits"] and method == "DELETE":
                sandbox.rate_limits.clear()
                return self._send_json(200, {"rate_limits": {}})
            if parts == ["rate_limits"] and method == "GET":
                return self._send_json(200, {"rate_limits": sandbox.rate_limits.list()})
            if parts == ["request_size_limits"] and method == "PUT":
                body = self._json_body(raw)
                sandbox.set_request_size_limit(body["route"], body["bytes"])
                return self._send_json(200, {"request_size_limits": sandbox.request_size_limits})
            if parts == ["request_size_limits"] and method == "GET":
                return self._send_json(200, {"request_size_limits": sandbox.request_size_limits})
            if parts == ["switches"] and method == "PUT":
                return self._send_json(200, sandbox.set_switches(**self._json_body(raw)))
            if parts == ["claude_latency"] and method == "PUT":
                sandbox.claude_latency = float(self._json_body(raw)["seconds"])
                return self._send_json(200, {"seconds": sandbox.claude_latency})
            if len(parts) == 3 and parts[0] == "datasets" and parts[2] == "rows" and method == "GET":
                return self._send_json(200, {"rows": sandbox.state.dataset_rows(parts[1])})
            if len(parts) == 3 and parts[0] == "logs" and parts[2] == "tags" and method == "PUT":
                # A reviewer sets a log's tags in the log view (and may sign in its metadata): a new _xact_id.
                body = self._json_body(raw)
                fields = {"tags": list(body["tags"])}
                if body.get("reviewed_by"):
                    log = next((log for log in sandbox.state.logs() if log.get("id") == parts[1]), None)
                    fields["metadata"] = {**((log or {}).get("metadata") or {}), "reviewed_by": body["reviewed_by"]}
                return self._send_json(200, sandbox.state.update_log(parts[1], **fields))
            if parts == ["experiments"] and method == "GET":
                return self._send_json(200, {"experiments": sandbox.state.experiments()})
            if parts == ["experiments"] and method == "DELETE":
                sandbox.state.experiment_store.clear()
                return self._send_json(200, {"experiments": []})
            if len(parts) == 1 and parts[0] in _CASE_CONTROLS and method in ("POST", "DELETE", "GET"):
                return self._case_control(parts[0], method, raw)
            if parts == ["claude_limits"] and method == "PUT":
                sandbox.claude_limits.set(**self._json_body(raw))
                return self._send_json(200, sandbox.claude_limits.as_dict())
            if parts == ["claude_limits"] and method == "GET":
                return self._send_json(200, sandbox.claude_limits.as_dict())
            if parts == ["claude_limits"] and method == "DELETE":
                sandbox.claude_limits.clear()
                return self._send_json(200, sandbox.claude_limits.as_dict())
            if parts == ["claude_outage"] and method == "PUT":
                sandbox.claude_outage(self._json_body(raw)["kind"])
                return self._send_json(200, sandbox.claude_outage_status())
            if parts == ["claude_outage"] and method == "GET":
                return self._send_json(200, sandbox.claude_outage_status())
            if parts[:1] == ["batches"]:
                return self._batches_control(method, parts[1:], raw)
        except BatchNotFound as exc:
            return self._send_json(404, {"error": str(exc)})
        except (KeyError, TypeError, ValueError) as exc:
            return self._send_json(400, {"error": f"bad control request: {exc}"})
        self._send_json(404, {"error": f"no such control endpoint: {method} {path}"})

    def _batches_control(self, method: str, rest: list[str], raw: bytes) -> None:
        batches = self.sandbox.batches
        if rest == [] and method == "PUT":
            batches.processing_seconds = self._json_body(raw)["processing_seconds"]
        if rest == [] and method in ("GET", "PUT"):
            return self._send_json(
                200,
                {
                    "processing_seconds": batches.processing_seconds,
                    "outcomes": dict(batches.outcomes),
                    "batches": batches.all(),
                },
            )
        if rest == ["outcomes"] and method == "POST":
            scripted = self._json_body(raw)
            for custom_id, result in scripted.items():
                batches.outcomes[custom_id] = result
            return self._send_json(201, {"outcomes": dict(batches.outcomes)})
        if rest == ["outcomes"] and method == "GET":
            return self._send_json(200, {"outcomes": dict(batches.outcomes)})
        if rest == ["outcomes"] and method == "DELETE":
            batches.outcomes.clear()
            return self._send_json(200, {"outcomes": {}})
        if len(rest) == 2 and rest[1] == "expire" and method == "POST":
            return self._send_json(200, batches.expire(rest[0]))
        if len(rest) == 2 and rest[1] == "end_processing" and method == "POST":
            return self._send_json(200, batches.end_processing(rest[0]))
        if len(rest) == 2 and rest[1] == "backdate" and method == "POST":
            return self._send_json(200, batches.backdate(rest[0], self._json_body(raw)["seconds"]))
        self._send_json(404, {"error": f"no such control endpoint: {method} /_sandbox/batches/{'/'.join(rest)}"})

    def _case_control(self, kind: str, method: str, raw: bytes) -> None:
        """``/_sandbox/{logs,tags,datasets,claude_replies}``: add (POST), list (GET), clear (DELETE)."""
        sandbox = self.sandbox
        state = sandbox.state
        if method == "DELETE":
            clear = {
                "logs": state.clear_logs,
                "tags": state.clear_tags,
                "datasets": state.clear_datasets,
                "claude_replies": sandbox.claude_replies.clear,
            }
            clear[kind]()
            return self._send_json(200, {kind: 0 if kind == "claude_replies" else []})
        if method == "GET":
            listed = {
                "logs": state.logs,
                "tags": lambda: state.tags(None),
                "datasets": lambda: state.datasets(None),
                "claude_replies": lambda: len(sandbox.claude_replies),
            }[kind]()
            return self._send_json(200, {kind: listed})
        items = self._json_items(raw, kind)
        if kind == "claude_replies":
            for reply in [fake_claude.check_reply(item) for item in items]:
                sandbox.claude_replies.push(reply)
            return self._send_json(201, {"claude_replies": len(sandbox.claude_replies)})
        if kind == "logs":
            created = [_log_fields(item) for item in items]
            return self._send_json(201, {"logs": [state.add_log(created=when, **fields) for when, fields in created]})
        # Every item is checked before any is stored: a refused request adds nothing.
        for item in items:
            if not isinstance(item.get("name"), str) or not item["name"]:
                raise ValueError(f"each of {kind} needs a non-empty 'name'")
            unknown = set(item) - {"name", "description", "project_id"}
            if kind == "datasets" and unknown:
                raise ValueError(f"a dataset takes name, description and project_id, not {sorted(unknown)}")
        add = state.add_tag if kind == "tags" else state.add_dataset
        added = []
        for item in items:
            extra = {key: value for key, value in item.items() if key not in ("name", "description")}
            added.append(add(item["name"], item.get("description"), **extra))
        return self._send_json(201, {kind: added})

    def _json_items(self, raw: bytes, kind: str) -> list:
        """A control body holding one object, a list of them, or ``{kind: [...]}``."""
        try:
            value = json.loads(raw or b"null")
        except ValueError:
            raise ValueError("request body is not JSON") from None
        if isinstance(value, dict) and isinstance(value.get(kind), list):
            value = value[kind]
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(item, dict) for item in items):
            raise ValueError(f"POST /_sandbox/{kind} takes an object or a non-empty list of objects")
        return items


_CASE_CONTROLS = ("logs", "tags", "datasets", "claude_replies")
# The messages route's answers during an outage (Anthropic, "Errors": 500 api_error, 529 overloaded_error).
OUTAGE_REPLIES = {"overloaded": (529, "Overloaded"), "server_error": (500, "Internal server error")}
OUTAGE_KINDS = (*OUTAGE_REPLIES, "unreachable")


def _chunks(encoded: list[bytes], budget: int | None) -> list[bytes]:
    """``encoded`` lines grouped into chunks of about STREAM_CHUNK bytes; with a budget, only its first
    ``budget`` bytes (the cut may fall inside a line)."""
    data = b"".join(encoded)
    if budget is not None:
        data = data[:budget]
    chunks, start = [], 0
    while start < len(data):
        end = data.find(b"\n", start + STREAM_CHUNK)
        end = len(data) if end == -1 else end + 1
        chunks.append(data[start:end])
        start = end
    return chunks


def _log_fields(item: dict) -> tuple[datetime | None, dict]:
    """(created, other fields) of a log posted to ``/_sandbox/logs``; ``created`` is RFC 3339 (UTC if no offset)."""
    fields = dict(item)
    created = fields.pop("created", None)
    if created is None:
        return None, fields
    if not isinstance(created, str):
        raise ValueError("a log's 'created' is an RFC 3339 time such as 2026-11-24T10:00:00Z")
    try:
        moment = datetime.fromisoformat(created.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"a log's 'created' is an RFC 3339 time, not {created!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), fields


_BUCKET_WORDS = {"requests": "requests", "input-tokens": "input tokens", "output-tokens": "output tokens"}


def _rate_limit_message(limits: ClaudeRateLimits, decision) -> str:
    settings = limits.settings()
    per_minute = {
        "requests": settings["requests_per_minute"],
        "input-tokens": settings["input_tokens_per_minute"],
        "output-tokens": settings["output_tokens_per_minute"],
    }
    name = decision.exceeded[0]
    return (
        f"This request would exceed the rate limit for your organization of {per_minute[name]:,} "
        f"{_BUCKET_WORDS[name]} per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client dropping its keep-alive connection (a timed-out or killed command) is routine here,
        # not worth a traceback on stderr; anything else still gets one.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class Sandbox:
    """Braintrust and Anthropic on 127.0.0.1. ``with Sandbox() as sandbox:`` starts and stops it."""

    def __init__(self, *, seed: bool = True, now: datetime | None = None, port: int = 0, host: str = "127.0.0.1"):
        self.state = SandboxState()
        self.faults = FaultRules()
        self.claude_replies = fake_claude.ReplyQueue()
        self.claude_latency = 0.0
        # Anthropic's per-organisation RPM / ITPM / OTPM buckets on the messages route (none set: no limit).
        self.claude_limits = ClaudeRateLimits()
        self._claude_outage: str | None = None
        self._claude_outage_requests = 0
        # Taking a scripted reply and charging the buckets for it is one step, so a refused request
        # puts its reply back in first place before another request can take the next one.
        self._claude_reply_lock = threading.Lock()
        # The Message Batches API; a succeeded request gets what the messages route would answer.
        self.batches = Batches(reply=self._batch_reply)
        self.rate_limits = RateLimits()
        # Body limits in bytes per route (a route missing or None: no limit); tests may assign entries.
        self.request_size_limits: dict[str, int | None] = default_size_limits()
        # 413 as Braintrust answers an oversized body; 400 as some proxies in front of a service do.
        self.size_limit_status = 413
        # True: every non-empty BTQL page carries a cursor, the end is an empty page. False: a page
        # shorter than its limit carries none. A client must survive both.
        self.btql_cursor_on_last_page = True
        self._host, self._port = host, port
        self._counts: Counter[str] = Counter()
        self._rate_limited: Counter[str] = Counter()
        self._claude_requests: list[dict] = []
        self._btql_bodies: list[dict] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        if seed:
            from braintrust_ops_sandbox.seed_data import seed as seed_state

            seed_state(self.state, now or datetime.now().astimezone())

    def start(self) -> "Sandbox":
        handler = type("SandboxHandler", (_Handler,), {"sandbox": self})
        self._server = _Server((self._host, self._port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.batches.base_url = self.url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)
            self._server = None

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- limits and switches -------------------------------------------------------------------

    def set_request_size_limit(self, route: str, limit: int | None) -> None:
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {sorted(ROUTES)}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError("a size limit is a number of bytes, or None for no limit")
        self.request_size_limits[route] = limit

    def set_switches(
        self, *, btql_cursor_on_last_page: bool | None = None, size_limit_status: int | None = None
    ) -> dict:
        if btql_cursor_on_last_page is not None:
            self.btql_cursor_on_last_page = bool(btql_cursor_on_last_page)
        if size_limit_status is not None:
            if size_limit_status not in (400, 413):
                raise ValueError("size_limit_status is 413 or 400")
            self.size_limit_status = size_limit_status
        return {"btql_cursor_on_last_page": self.btql_cursor_on_last_page, "size_limit_status": self.size_limit_status}

    # --- Claude: outage and rate limits --------------------------------------------------------

    def claude_outage(self, kind: str | None) -> None:
        """Start an outage of the messages route, or end it (None). ``"overloaded"``: every request gets
        529 ``overloaded_error``; ``"server_error"``: 500 ``api_error``; ``"unreachable"``: the connection
        is closed without an answer. Starting one resets ``claude_outage_requests`` to 0."""
        if kind is not None and kind not in OUTAGE_KINDS:
            raise ValueError(f"unknown outage kind {kind!r}; one of {list(OUTAGE_KINDS)} or None")
        with self._lock:
            if kind is not None and kind != self._claude_outage:
                self._claude_outage_requests = 0
            self._claude_outage = kind

    @property
    def claude_outage_kind(self) -> str | None:
        with self._lock:
            return self._claude_outage

    @property
    def claude_outage_requests(self) -> int:
        """Messages requests received during the current outage (or the last one, once it has ended)."""
        with self._lock:
            return self._claude_outage_requests

    def claude_outage_status(self) -> dict:
        with self._lock:
            return {"kind": self._claude_outage, "requests": self._claude_outage_requests}

    def _claude_outage_hit(self) -> str | None:
        with self._lock:
            if self._claude_outage is not None:
                self._claude_outage_requests += 1
            return self._claude_outage

    def _claude_reply(self, body: dict):
        """(reply, limiter decision) for a valid messages request; a refused one leaves its scripted reply queued."""
        with self._claude_reply_lock:
            scripted = self.claude_replies.pop()
            reply = fake_claude.message_reply(body, scripted)
            usage = reply["usage"]
            decision = self.claude_limits.admit(
                input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"]
            )
            if not decision.accepted and scripted is not None:
                self.claude_replies.push_front(scripted)
        return reply, decision

    def _batch_reply(self, params: dict) -> dict:
        """A batched request's message: the messages route's reply, scripted ones included. Claude's
        per-minute buckets are the Messages API's; batches have their own limits (docs: rate limits,
        "Message Batches API"), so nothing is charged here."""
        with self._claude_reply_lock:
            return fake_claude.message_reply(params, self.claude_replies.pop())

    # --- what tests read ------------------------------------------------------------------------

    def _record(self, route: str) -> None:
        with self._lock:
            self._counts[route] += 1

    def _record_rate_limited(self, route: str) -> None:
        with self._lock:
            self._rate_limited[route] += 1

    def _record_claude_request(self, body: dict) -> None:
        with self._lock:
            self._claude_requests.append(body)

    def _record_btql_body(self, body: dict) -> None:
        with self._lock:
            self._btql_bodies.append(body)

    def btql_bodies(self) -> list[dict]:
        """The BTQL request bodies received (authorised ones), oldest first."""
        with self._lock:
            return list(self._btql_bodies)

    def count(self, route: str) -> int:
        """Requests received on ``route`` (faulted, rate-limited and oversized ones included)."""
        with self._lock:
            return self._counts[route]

    def rate_limited(self, route: str) -> int:
        """Requests on ``route`` that the rate limiter answered with 429 (not 429 faults)."""
        with self._lock:
            return self._rate_limited[route]

    @property
    def rate_limited_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._rate_limited)

    @property
    def requests(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def claude_requests(self) -> list[dict]:
        with self._lock:
            return list(self._claude_requests)
