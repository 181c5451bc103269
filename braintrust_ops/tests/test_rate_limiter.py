"""The shared pace of Claude requests, learnt from Anthropic's rate-limit headers (pure, a fake clock)."""

import threading

from braintrust_ops.outage_breaker import OutageBreaker
from braintrust_ops.rate_limiter import RateLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def headers(limit, remaining, **extra):
    return {
        "anthropic-ratelimit-requests-limit": str(limit),
        "anthropic-ratelimit-requests-remaining": str(remaining),
        **extra,
    }


def wait_of(limiter, tokens=0.0):
    with limiter._condition:
        return limiter._wait(tokens)


def test_before_any_reply_nothing_is_known_and_requests_go():
    assert wait_of(RateLimiter(clock=Clock())) <= 0


def test_with_no_requests_left_the_next_one_waits_for_the_bucket_to_refill_at_the_limit_per_minute():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.observe(200, headers(limit=60, remaining=0))  # 60 a minute: one a second
    assert wait_of(limiter) == 1.0
    clock.now += 0.5
    assert wait_of(limiter) == 0.5
    clock.now += 0.5
    assert wait_of(limiter) <= 0


def test_each_acquire_takes_one_request_from_the_bucket():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.observe(200, headers(limit=600, remaining=2))
    assert limiter.acquire() and limiter.acquire()
    assert wait_of(limiter) > 0  # the third waits: 600 a minute refills one every 0.1 s


def test_the_server_s_count_only_ever_lowers_the_local_one():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.observe(200, headers(limit=60, remaining=10))
    limiter.observe(200, headers(limit=60, remaining=50))  # a reply sent before ours were counted
    assert limiter._buckets["requests"].level == 10
    limiter.observe(200, headers(limit=60, remaining=3))  # another process shares the organisation's limit
    assert limiter._buckets["requests"].level == 3


def test_a_429_pauses_every_request_for_its_retry_after():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.observe(429, headers(limit=60, remaining=0, **{"retry-after": "7"}))
    assert wait_of(limiter) == 7.0 and limiter.refused == 1


def test_a_429_without_retry_after_pauses_doubling_while_they_keep_coming():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    for expected in (1.0, 2.0, 4.0):
        limiter.observe(429, {})
        assert wait_of(limiter) == expected
        clock.now += expected
    limiter.observe(200, {})
    limiter.observe(429, {})
    assert wait_of(limiter) == 1.0  # a success ended the streak


def test_input_tokens_are_paced_too_and_a_request_waits_for_its_share():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.observe(
        200,
        {"anthropic-ratelimit-input-tokens-limit": "6000", "anthropic-ratelimit-input-tokens-remaining": "100"},
    )
    assert wait_of(limiter, tokens=100) <= 0
    assert wait_of(limiter, tokens=300) == 2.0  # 200 more tokens at 100 a second


def test_acquire_gives_up_when_the_run_stops():
    limiter = RateLimiter(clock=Clock())
    limiter.observe(429, {"retry-after": "3600"})
    stop = threading.Event()
    stop.set()
    assert limiter.acquire(stop=stop) is False


def test_the_breaker_opens_after_the_threshold_of_service_failures_in_a_row():
    breaker = OutageBreaker(threshold=3)
    breaker.service_failure("HTTP 529")
    breaker.service_failure("HTTP 529")
    breaker.success()
    assert breaker.in_a_row == 0
    for _ in range(3):
        breaker.service_failure("HTTP 529 overloaded_error")
    assert breaker.open and breaker.reason == "HTTP 529 overloaded_error"
    breaker.success()  # a late success does not close an open breaker: the run has already stopped
    assert breaker.open


def test_the_refill_rate_follows_the_reset_time_when_it_is_sooner_than_a_minute_implies():
    clock = Clock()
    limiter = RateLimiter(clock=clock, wall_clock=lambda: 1_800_000_000.0)
    # 60 a minute, 30 used, full again in 3 s: the bucket refills 10 a second (a scaled sandbox, or a burst).
    limiter.observe(
        200, headers(limit=60, remaining=30, **{"anthropic-ratelimit-requests-reset": "2027-01-15T08:00:03Z"})
    )
    assert limiter._buckets["requests"].per_second == 10.0


def test_a_reset_rounded_to_a_later_second_never_slows_the_pace_below_the_limit_per_minute():
    limiter = RateLimiter(clock=Clock(), wall_clock=lambda: 1_800_000_000.0)
    limiter.observe(
        200, headers(limit=1200, remaining=1199, **{"anthropic-ratelimit-requests-reset": "2027-01-15T08:00:01Z"})
    )
    assert limiter._buckets["requests"].per_second == 20.0
