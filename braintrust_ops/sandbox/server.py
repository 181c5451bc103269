"""The sandbox HTTP server: Braintrust's REST subset and Anthropic's Messages API on one loopback port.

Requests go through real sockets, so the commands' SDKs, retries and timeouts run as in production.
A small control API under ``/_sandbox/`` lets a separate process (the demo, a benchmark) add faults
and read counters.
"""

import json
import logging
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from braintrust_ops.sandbox import btql, fake_claude
from braintrust_ops.sandbox.constants import (
    ANTHROPIC_KEY,
    BRAINTRUST_KEY,
    KNOWN_PROJECTS,
    PROJECT_NAMES,
    SANDBOX_ORG_ID,
)
from braintrust_ops.sandbox.faults import FaultRules
from braintrust_ops.sandbox.state import SandboxState, encode_json

# Standard logging, not structlog: a sandbox in a bare process (a benchmark's) has no structlog
# configuration, and structlog's default would print every request to stdout.
logger = logging.getLogger(__name__)


class HTTPFailure(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _route(method: str, path: str) -> tuple[str, str | None] | None:
    """(route name, object id) for a Braintrust or Anthropic endpoint, None for anything else. The
    object id is the dataset's, or for ``project`` the project's."""
    parts = [part for part in path.split("/") if part]
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

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json_body(self, raw: bytes) -> dict:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise HTTPFailure(400, "request body is not JSON") from None
        if not isinstance(body, dict):
            raise HTTPFailure(400, "request body must be a JSON object")
        return body

    def _send(self, status: int, payload: bytes, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test); nothing to answer.
            self.close_connection = True

    def _send_json(self, status: int, data: object, headers: dict | None = None) -> None:
        self._send(status, encode_json(data), headers)

    def _send_error(self, route: str | None, status: int, message: str, headers: dict | None = None) -> None:
        if route == "messages":
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
        url = urlsplit(self.path)
        raw = self._body()
        if url.path.startswith("/_sandbox/"):
            return self._control(method, url.path, raw)
        matched = _route(method, url.path)
        if matched is None:
            return self._send_json(404, {"error": f"no such endpoint: {method} {url.path}"})
        route, object_id = matched
        sandbox = self.sandbox
        sandbox._record(route)
        fault = sandbox.faults.take(route)
        if fault is not None:
            if fault.kind == "latency":
                time.sleep(fault.delay)
            elif fault.kind == "drop":
                return self._drop()
            elif fault.kind == "invalid_json":
                return self._send(200, b'{"data": [{"id": "truncat')
            elif fault.kind == "status":
                headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
                if fault.status == 200:
                    # A reply that parses but lacks the list the client needs.
                    return self._send_json(200, {"error": "sandbox fault: an unexpected reply"})
                return self._send_error(route, fault.status, f"sandbox fault: HTTP {fault.status}", headers)
        try:
            if route == "messages":
                self._messages(raw)
            else:
                self._braintrust(route, object_id, parse_qs(url.query), raw)
        except HTTPFailure as failure:
            self._send_error(route, failure.status, failure.message)

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
        body = self._json_body(raw)
        dataset_id = object_id
        if route == "btql":
            self.sandbox._record_btql_body(body)
            return self._btql(body)
        if not state.has_dataset(dataset_id):
            raise HTTPFailure(404, f"dataset {dataset_id} not found")
        if route == "dataset_insert":
            events = body.get("events")
            if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
                raise HTTPFailure(400, "body.events must be a list of objects")
            return self._send_json(200, {"row_ids": state.insert_rows(dataset_id, events)})
        try:
            offset = btql.decode_offset_cursor(body["cursor"]) if body.get("cursor") else 0
            limit = int(body.get("limit") or 1000)
        except (btql.BadQuery, TypeError, ValueError):
            raise HTTPFailure(400, "fetch: cursor or limit is not valid") from None
        if limit < 1:
            raise HTTPFailure(400, "fetch: limit must be at least 1")
        rows, more = state.dataset_rows_page(dataset_id, offset, limit)
        self._send_json(200, {"events": rows, "cursor": btql.encode_cursor(offset + limit) if more else None})

    def _btql(self, body: dict) -> None:
        try:
            query = btql.parse_logs_query(body.get("query"))
            after = btql.decode_log_cursor(body["cursor"]) if body.get("cursor") else None
        except btql.BadQuery as exc:
            raise HTTPFailure(400, f"BTQL: {exc}") from None
        if query.project_id not in KNOWN_PROJECTS:
            raise HTTPFailure(403, f"project {query.project_id} not found or not accessible with this key")
        rows, next_key = self.sandbox.state.query_logs(
            project_id=query.project_id,
            since=query.since,
            until=query.until,
            root_only=query.root_only,
            after=after,
            limit=query.limit,
        )
        cursor = btql.encode_cursor(list(next_key)) if next_key else None
        state = self.sandbox.state
        payload = b'{"data": [' + b", ".join(state.log_json(row) for row in rows) + b'], "cursor": '
        self._send(200, payload + json.dumps(cursor).encode() + b"}", {"x-bt-cursor": cursor} if cursor else None)

    def _messages(self, raw: bytes) -> None:
        sandbox = self.sandbox
        # The SDK sends the key as x-api-key or, in newer releases, as a bearer token.
        if ANTHROPIC_KEY not in (self.headers.get("x-api-key"), self.headers.get("Authorization", "")[7:]):
            raise HTTPFailure(401, "invalid x-api-key")
        body = self._json_body(raw)
        sandbox._record_claude_request(body)
        missing = [field for field in ("model", "max_tokens", "messages") if field not in body]
        if missing:
            raise HTTPFailure(400, f"missing required fields: {', '.join(missing)}")
        if sandbox.claude_latency:
            time.sleep(sandbox.claude_latency)
        self._send_json(200, fake_claude.message_reply(body, sandbox.claude_replies.pop()))

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
            if parts == ["claude_latency"] and method == "PUT":
                sandbox.claude_latency = float(self._json_body(raw)["seconds"])
                return self._send_json(200, {"seconds": sandbox.claude_latency})
            if len(parts) == 3 and parts[0] == "datasets" and parts[2] == "rows" and method == "GET":
                return self._send_json(200, {"rows": sandbox.state.dataset_rows(parts[1])})
        except (KeyError, TypeError, ValueError) as exc:
            return self._send_json(400, {"error": f"bad control request: {exc}"})
        self._send_json(404, {"error": f"no such control endpoint: {method} {path}"})


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
        self._host, self._port = host, port
        self._counts: Counter[str] = Counter()
        self._claude_requests: list[dict] = []
        self._btql_bodies: list[dict] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        if seed:
            from braintrust_ops.sandbox.seed_data import seed as seed_state

            seed_state(self.state, now or datetime.now().astimezone())

    def start(self) -> "Sandbox":
        handler = type("SandboxHandler", (_Handler,), {"sandbox": self})
        self._server = _Server((self._host, self._port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
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

    # --- what tests read ------------------------------------------------------------------------

    def _record(self, route: str) -> None:
        with self._lock:
            self._counts[route] += 1

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
        """Requests received on ``route`` (faulted ones included)."""
        with self._lock:
            return self._counts[route]

    @property
    def requests(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def claude_requests(self) -> list[dict]:
        with self._lock:
            return list(self._claude_requests)
