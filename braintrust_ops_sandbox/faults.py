"""Faults a test switches on for one route: an HTTP status, latency, a dropped connection, garbled JSON,
or a reply cut off mid-body (``partial``: the route's real reply, its full Content-Length announced,
half of its bytes sent, then the connection closed, as when a proxy or the network gives out).
``proxy_page``: a 200 that is an HTML page, as a proxy or captive portal answers. ``not_utf8``: a 200
said to be JSON whose bytes are not UTF-8 (a compressed body without its Content-Encoding).
``redirect``: a 3xx (``status``, 307 unless given) whose Location is the request's own path, so the
client's next hop comes back to the same route and meets its next rule, unless the rule gives another
``location``. ``reply``: a 200 whose JSON body is the rule's ``body``, as a server answers in a shape the
API does not document (a field missing, null or of another type); on ``batches_results``, whose reply is a
JSON Lines file, a list ``body`` is the file's lines, one item each.

Rules for a route are consumed in the order they were added: the first rule with turns left applies
to the next request, so ``add(429); add("drop"); add("invalid_json")`` plays those three in sequence.
A rule with a ``probability`` fires on that share of requests; when it does not, the next rule gets
its chance, so several 5% rules make a mix of faults on about a fifth of the requests.
"""

import random
import threading
from dataclasses import dataclass

# The Message Batches API (``batches.py``); ``batches_results`` is the GET of a batch's ``results_url``.
BATCH_ROUTES = frozenset({"batches_create", "batches_retrieve", "batches_list", "batches_cancel", "batches_results"})
# Routes whose errors take Anthropic's shape (``{"type": "error", "error": {"type", "message"}}``).
ANTHROPIC_ROUTES = frozenset({"messages", *BATCH_ROUTES})
ROUTES = frozenset(
    {
        "project",
        "project_tag",
        "dataset_list",
        "btql",
        "dataset_insert",
        "dataset_fetch",
        "project_logs_insert",
        "project_logs_feedback",
        "experiment_create",
        "experiment_list",
        "experiment_insert",
        "experiment_summarize",
        *ANTHROPIC_ROUTES,
    }
)
# ``echo_credentials``: an error (``status``) whose body quotes the request's Authorization and x-api-key
# headers back, as some proxies and debugging servers do: what the app prints or stores of it must not show a key.
KINDS = frozenset(
    {
        "status",
        "latency",
        "drop",
        "invalid_json",
        "partial",
        "echo_credentials",
        "proxy_page",
        "not_utf8",
        "redirect",
        "reply",
    }
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass
class Fault:
    route: str
    kind: str
    status: int = 500
    retry_after: float | None = None
    # None: every request until cleared.
    times: int | None = 1
    probability: float = 1.0
    delay: float = 0.0
    # The "reply" fault's JSON body.
    body: object = None
    # The "redirect" fault's Location (None: the request's own path).
    location: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class FaultRules:
    def __init__(self, seed: int = 0):
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._random = random.Random(seed)

    def add(self, route: str, kind: str, **options) -> Fault:
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {sorted(ROUTES)}")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(KINDS)}")
        if kind == "redirect":
            options.setdefault("status", 307)
            if options["status"] not in REDIRECT_STATUSES:
                raise ValueError(f"a redirect's status is one of {sorted(REDIRECT_STATUSES)}")
        fault = Fault(route=route, kind=kind, **options)
        if fault.times is not None and fault.times < 1:
            raise ValueError("times must be at least 1 (or None: until cleared)")
        with self._lock:
            self._rules.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [rule.as_dict() for rule in self._rules]

    def take(self, route: str) -> Fault | None:
        """The fault for this request on ``route``, if any; uses up one of its turns."""
        with self._lock:
            for rule in self._rules:
                if rule.route != route:
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue  # this rule passed; a later one for the route may still fire
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                return rule
            return None
