"""The real services' limits, which a sandbox without them would let a client forget: request rates per
route, and request body sizes.

Rates: BTQL allows about 20 requests a minute on some plans (Braintrust knowledge base), and a 429
may come without ``Retry-After``; a test sets ``rate_limits.set("btql", requests=20, per_seconds=60,
retry_after=False)``. Windows take float seconds, so a benchmark can run on scaled time.
"""

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from braintrust_ops_sandbox.batches import MAX_BATCH_BYTES
from braintrust_ops_sandbox.faults import ANTHROPIC_ROUTES, ROUTES

# The braintrust SDK's cap on a request body (logger.py, DEFAULT_MAX_REQUEST_SIZE = 6 * 1024 * 1024).
BRAINTRUST_MAX_REQUEST_BYTES = 6 * 1024 * 1024


def default_size_limits() -> dict[str, int]:
    """Per-route body limits in bytes: the SDK's cap on every Braintrust route; on Anthropic's, only a
    batch's 256 MB (``batches.py``); Anthropic's other limits are modelled separately."""
    limits = {route: BRAINTRUST_MAX_REQUEST_BYTES for route in ROUTES if route not in ANTHROPIC_ROUTES}
    return {**limits, "batches_create": MAX_BATCH_BYTES}


@dataclass
class Refusal:
    """A request over the limit. ``retry_after``: whole seconds until a slot frees, or None to send no header."""

    retry_after: int | None


@dataclass
class _Window:
    requests: int
    per_seconds: float
    retry_after: bool
    accepted: deque[float] = field(default_factory=deque)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "per_seconds": self.per_seconds, "retry_after": self.retry_after}


class RateLimits:
    """A sliding window per route: at most ``requests`` accepted in any ``per_seconds``. Refused
    requests do not count against the window, so a client that backs off gets through."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def set(self, route: str, *, requests: int, per_seconds: float, retry_after: bool = True) -> None:
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {sorted(ROUTES)}")
        if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
            raise ValueError("requests must be an integer of at least 1")
        if not per_seconds > 0:
            raise ValueError("per_seconds must be positive")
        with self._lock:
            self._windows[route] = _Window(requests, float(per_seconds), bool(retry_after))

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()

    def list(self) -> dict[str, dict]:
        with self._lock:
            return {route: window.as_dict() for route, window in self._windows.items()}

    def admit(self, route: str) -> Refusal | None:
        """None when the request is accepted (and counted), a ``Refusal`` when it is over the limit."""
        with self._lock:
            window = self._windows.get(route)
            if window is None:
                return None
            now = self._clock()
            while window.accepted and window.accepted[0] <= now - window.per_seconds:
                window.accepted.popleft()
            if len(window.accepted) < window.requests:
                window.accepted.append(now)
                return None
            # RFC 9110 section 10.2.3: Retry-After is a whole number of seconds, so round up.
            wait = window.accepted[0] + window.per_seconds - now
            return Refusal(max(1, math.ceil(wait)) if window.retry_after else None)
