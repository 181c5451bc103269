"""One pace for every Claude request of a run, shared by all its worker threads.

Anthropic limits requests and tokens per minute per organisation, replenished continuously (a token
bucket), and says where each limit stands on every reply: ``anthropic-ratelimit-requests-limit``,
``-remaining`` and ``-reset``, the same for ``-input-tokens-`` (or ``-tokens-``), and ``retry-after``
on a 429 (SPEC.md; Anthropic's docs, "Rate limits"). So nothing is hard-coded: this keeps a local copy
of each bucket, refilled at limit/60 per second, brought down to what the server says is left, and
paused for ``retry-after`` after a 429. Before the first reply it knows nothing and lets requests go
(the worker count bounds them). Every attempt goes through it, the SDK's retries included (the client's
per-attempt hooks: ``clients/claude.py``, ``_PacedAnthropic``).
"""

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

RATE_LIMITED = 429
# A 429 without retry-after: pause this long, doubling while they keep coming (at most a minute).
BASE_PAUSE_SECONDS = 1.0
MAX_PAUSE_SECONDS = 60.0
# The longest pause a 429's retry-after may impose: the Braintrust layer's default wait budget
# (HTTP_RATE_LIMIT_BUDGET_SECONDS, 300 s). A longer one pauses this long; the SDK's own retry, or the next
# 429, says again if the limit still holds.
MAX_RETRY_AFTER_SECONDS = 300.0


@dataclass
class _Bucket:
    capacity: float
    per_second: float
    level: float
    at: float

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.per_second)
        self.at = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` is in the bucket (0: now). More than the capacity waits for a full bucket."""
        missing = min(amount, self.capacity) - self.level
        # Only the sign of a wait matters to acquire(), and per_second is never 0 (a zero limit is ignored):
        # `< 0` or no 0.0 branch at all (mutmut) answer the same.
        return 0.0 if missing <= 0 else missing / self.per_second  # pragma: no mutate (equivalent, see above)


def _number(headers: Mapping[str, str], name: str) -> float | None:
    try:
        return float(headers[name])
    except (KeyError, TypeError, ValueError):
        return None


def _epoch(headers: Mapping[str, str], name: str) -> float | None:
    """An RFC 3339 time header as seconds since the epoch (``fromisoformat`` reads the ``Z`` since Python 3.11)."""
    try:
        return datetime.fromisoformat(headers[name]).timestamp()
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


class RateLimiter:
    """``acquire(tokens)`` before each request; ``observe(status, headers)`` after each reply."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        self._clock = clock
        self._wall_clock = wall_clock
        self._condition = threading.Condition()
        self._buckets: dict[str, _Bucket] = {}
        self._paused_until = 0.0
        self._rate_limited_in_a_row = 0
        self.refused = 0

    # The client always passes its estimate: the default only serves callers that do not count tokens, and
    # 1.0 (mutmut) would take one token of thousands, equivalent in practice.
    def acquire(self, tokens: float = 0.0, *, stop: threading.Event | None = None) -> bool:
        """Wait until a request of about ``tokens`` input tokens may start and take its share; False when
        ``stop`` was set meanwhile (the request must not start)."""
        with self._condition:
            while True:
                if stop is not None and stop.is_set():
                    return False
                wait = self._wait(tokens)
                if wait <= 0:
                    self._take(tokens)
                    return True
                self._condition.wait(min(wait, 0.5))

    def _wait(self, tokens: float) -> float:
        now = self._clock()
        waits = [self._paused_until - now]
        for name, bucket in self._buckets.items():
            bucket.refill(now)
            waits.append(bucket.wait_for(1.0 if name == "requests" else tokens))
        return max(waits)

    def _take(self, tokens: float) -> None:
        for name, bucket in self._buckets.items():
            bucket.level -= 1.0 if name == "requests" else tokens

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a reply: the limits and what is left of them, and a pause after a 429."""
        with self._condition:
            now = self._clock()
            # Only "requests" is a special bucket name (one per request); any other paces tokens alike, so
            # "input_tokens" spelt otherwise (mutmut) is equivalent.
            for name, prefixes in (("requests", ("requests",)), ("input_tokens", ("input-tokens", "tokens"))):
                for prefix in prefixes:
                    limit = _number(headers, f"anthropic-ratelimit-{prefix}-limit")
                    remaining = _number(headers, f"anthropic-ratelimit-{prefix}-remaining")
                    if limit and remaining is not None:
                        reset = _epoch(headers, f"anthropic-ratelimit-{prefix}-reset")
                        rate = _refill_rate(limit, remaining, reset, self._wall_clock())
                        self._update(name, limit=limit, remaining=remaining, per_second=rate, now=now)
                        break
            if status == RATE_LIMITED:
                self.refused += 1
                self._rate_limited_in_a_row += 1
                retry_after = _number(headers, "retry-after")
                # float() reads "inf" and "nan" too: a NaN is no retry-after, and any retry-after is held to
                # MAX_RETRY_AFTER_SECONDS, or one "inf" (or 1e9) would pause every worker of the run for good.
                if retry_after is not None and retry_after == retry_after:
                    pause = min(max(retry_after, 0.0), MAX_RETRY_AFTER_SECONDS)
                else:
                    pause = min(BASE_PAUSE_SECONDS * 2 ** (self._rate_limited_in_a_row - 1), MAX_PAUSE_SECONDS)
                self._paused_until = max(self._paused_until, now + pause)
                if "requests" in self._buckets:
                    self._buckets["requests"].level = min(self._buckets["requests"].level, 0.0)
            else:
                self._rate_limited_in_a_row = 0
            self._condition.notify_all()

    def _update(self, name: str, *, limit: float, remaining: float, per_second: float, now: float) -> None:
        bucket = self._buckets.get(name)
        if bucket is None:
            self._buckets[name] = _Bucket(capacity=limit, per_second=per_second, level=remaining, at=now)
            return
        bucket.refill(now)
        bucket.capacity, bucket.per_second = limit, per_second
        # The server's count is the truth, but it does not know of the requests sent since: only lower ours.
        bucket.level = min(bucket.level, remaining)


def _refill_rate(limit: float, remaining: float, reset: float | None, wall_now: float) -> float:
    """Per second: the limit per minute over 60, or faster when ``-reset`` (the time the bucket is full
    again) says so. Never slower: a reset rounded up to a whole second must not throttle the run."""
    per_minute = limit / 60.0
    # A reset less than a second away says little (a time cut to the second, clocks apart): the limit per
    # minute stands, rather than a rate that would refill the whole bucket at once.
    # `remaining > limit` (mutmut) is equivalent: a full bucket gives (limit - remaining) <= 0 below, and
    # max() keeps the limit per minute.
    if reset is None or remaining >= limit or reset - wall_now < 1.0:
        return per_minute
    return max(per_minute, (limit - remaining) / (reset - wall_now))
