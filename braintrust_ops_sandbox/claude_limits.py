"""Anthropic's rate limits on the Messages API, with the headers the real API sends.

Sources: Anthropic's "Rate limits" page (https://platform.claude.com/docs/en/api/rate-limits, the source
of truth) and AWS's restatement of it ("Claude Platform on AWS: Rate limits and quotas",
https://docs.aws.amazon.com/claude-platform/latest/userguide/rate-limits.html). What the sandbox copies:

- Limits are per organisation: requests per minute (RPM), input tokens per minute (ITPM) and output
  tokens per minute (OTPM), enforced with the token bucket algorithm: capacity is continuously
  replenished up to the maximum, not reset at fixed intervals.
- Every reply carries ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
  remaining,reset}``: the per-minute limit, what is left, and the time (RFC 3339) the bucket is fully
  replenished.
- Going over any of them gives HTTP 429 ``rate_limit_error`` with ``retry-after``: the number of seconds
  to wait before retrying.

What the sandbox chooses (not in the docs, or simplified):

- A request costs 1 request, and the input and output tokens the fake reports as ``usage`` for it
  (``fake_claude.estimate_tokens``). The real API estimates output tokens from ``max_tokens`` at the start
  and corrects them at the end; here the cost is known up front, so it is charged once.
- A refused request consumes nothing from any bucket; an accepted one is charged in all of them at once.
- Only the buckets that are set produce headers (none set: no ``anthropic-ratelimit-*`` header at all).
  ``-remaining`` is the exact whole number left (the docs round token counts; we do not).
- ``tokens-*``: Anthropic's page describes it as the most restrictive token limit in effect, AWS's as
  combined input + output; the sandbox repeats the input or output bucket with fewer tokens remaining.

Scaled time (``time_scale``): the buckets refill ``time_scale`` times faster than real time, so with
``time_scale=60`` a "minute" of capacity comes back in one real second. The headers still state
per-minute limits; ``-reset`` and ``retry-after`` are real (wall-clock) times, computed from that scaled
refill, so a client that waits as told gets through. At ``time_scale=1`` they are whole seconds as
Anthropic sends them (``retry-after`` rounded up, RFC 9110 section 10.2.3); under a scale they keep
milliseconds (``retry-after: 0.250``), which the anthropic SDK reads (``_parse_retry_after_header`` takes
"nonstandard floats"), because a whole second would be a scaled minute.
"""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

SECONDS_PER_MINUTE = 60.0
HEADER_PREFIX = "anthropic-ratelimit-"


@dataclass
class _Bucket:
    """A token bucket of ``limit`` per scaled minute, full when created."""

    limit: int
    level: float
    updated: float  # the real monotonic time the level was computed at

    def refill(self, now: float, time_scale: float) -> None:
        rate = self.limit / SECONDS_PER_MINUTE * time_scale  # per real second
        self.level = min(float(self.limit), self.level + (now - self.updated) * rate)
        self.updated = now

    def seconds_until(self, amount: float, time_scale: float) -> float:
        """Real seconds until the bucket holds ``amount`` (at most its limit)."""
        missing = min(float(amount), float(self.limit)) - self.level
        return max(0.0, missing / (self.limit / SECONDS_PER_MINUTE * time_scale))


@dataclass
class Decision:
    """The limiter's answer to one request: its headers, and on refusal the ``retry-after`` value."""

    accepted: bool
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: str | None = None
    # On refusal: which buckets were short ("requests", "input-tokens", "output-tokens").
    exceeded: list[str] = field(default_factory=list)


class ClaudeRateLimits:
    """RPM, ITPM and OTPM token buckets for the ``messages`` route, plus counts of accepted and refused requests.

    ``set(...)`` installs limits (a dimension left None is not limited) with full buckets; ``clear()`` lifts them.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._settings: dict = self._describe({}, 1.0, True)
        self._time_scale = 1.0
        self._retry_after = True
        self._accepted = 0
        self._refused = 0

    @staticmethod
    def _describe(limits: dict[str, int], time_scale: float, retry_after: bool) -> dict:
        return {
            "requests_per_minute": limits.get("requests"),
            "input_tokens_per_minute": limits.get("input-tokens"),
            "output_tokens_per_minute": limits.get("output-tokens"),
            "time_scale": time_scale,
            "retry_after": retry_after,
        }

    def set(
        self,
        *,
        requests_per_minute: int | None = None,
        input_tokens_per_minute: int | None = None,
        output_tokens_per_minute: int | None = None,
        time_scale: float = 1.0,
        retry_after: bool = True,
    ) -> dict:
        """Replace the limits; every bucket starts full. ``retry_after=False``: 429s come without ``retry-after``."""
        limits = {
            "requests": requests_per_minute,
            "input-tokens": input_tokens_per_minute,
            "output-tokens": output_tokens_per_minute,
        }
        for name, value in limits.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} per minute must be an integer of at least 1, or None for no limit")
        if isinstance(time_scale, bool) or not isinstance(time_scale, (int, float)) or not time_scale > 0:
            raise ValueError("time_scale must be a positive number")
        limits = {name: value for name, value in limits.items() if value is not None}
        now = self._clock()
        with self._lock:
            self._buckets = {name: _Bucket(value, float(value), now) for name, value in limits.items()}
            self._time_scale = float(time_scale)
            self._retry_after = bool(retry_after)
            self._settings = self._describe(limits, self._time_scale, self._retry_after)
            return dict(self._settings)

    def clear(self) -> None:
        with self._lock:
            self._buckets = {}
            self._time_scale = 1.0
            self._retry_after = True
            self._settings = self._describe({}, 1.0, True)

    def settings(self) -> dict:
        with self._lock:
            return dict(self._settings)

    @property
    def accepted(self) -> int:
        """Messages requests the limiter let through (all of them while no limit is set)."""
        with self._lock:
            return self._accepted

    @property
    def refused(self) -> int:
        """Messages requests the limiter answered with 429."""
        with self._lock:
            return self._refused

    def as_dict(self) -> dict:
        with self._lock:
            return {**self._settings, "accepted": self._accepted, "refused": self._refused}

    def admit(self, *, input_tokens: int, output_tokens: int) -> Decision:
        """Charge one request of this cost, or refuse it whole (nothing charged) when any bucket is short."""
        cost = {"requests": 1, "input-tokens": input_tokens, "output-tokens": output_tokens}
        now = self._clock()
        with self._lock:
            for bucket in self._buckets.values():
                bucket.refill(now, self._time_scale)
            short = [name for name, bucket in self._buckets.items() if bucket.level < cost[name]]
            if short:
                self._refused += 1
                wait = max(self._buckets[name].seconds_until(cost[name], self._time_scale) for name in short)
                retry_after = self._format_seconds(wait) if self._retry_after else None
                return Decision(False, self._headers(), retry_after, short)
            for name, bucket in self._buckets.items():
                bucket.level -= cost[name]
            self._accepted += 1
            return Decision(True, self._headers())

    # --- headers ---------------------------------------------------------------------------------

    def _format_seconds(self, seconds: float) -> str:
        if self._time_scale == 1.0:
            return str(max(1, math.ceil(seconds)))
        return f"{max(0.001, math.ceil(seconds * 1000) / 1000):.3f}"

    def _format_time(self, real_seconds_from_now: float) -> str:
        moment = self._wall_clock() + real_seconds_from_now
        if self._time_scale == 1.0:
            return datetime.fromtimestamp(math.ceil(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        stamp = datetime.fromtimestamp(math.ceil(moment * 1000) / 1000, UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"

    def _triple(self, bucket: _Bucket) -> tuple[str, str, str]:
        full_in = bucket.seconds_until(bucket.limit, self._time_scale)
        return str(bucket.limit), str(math.floor(bucket.level)), self._format_time(full_in)

    def _headers(self) -> dict[str, str]:
        headers = {}
        for name, bucket in self._buckets.items():
            limit, remaining, reset = self._triple(bucket)
            headers.update(
                {
                    f"{HEADER_PREFIX}{name}-limit": limit,
                    f"{HEADER_PREFIX}{name}-remaining": remaining,
                    f"{HEADER_PREFIX}{name}-reset": reset,
                }
            )
        token_buckets = [self._buckets[name] for name in ("input-tokens", "output-tokens") if name in self._buckets]
        if token_buckets:
            tightest = min(token_buckets, key=lambda bucket: bucket.level)
            limit, remaining, reset = self._triple(tightest)
            headers.update(
                {
                    f"{HEADER_PREFIX}tokens-limit": limit,
                    f"{HEADER_PREFIX}tokens-remaining": remaining,
                    f"{HEADER_PREFIX}tokens-reset": reset,
                }
            )
        return headers
