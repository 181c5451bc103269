"""The shared pace of Claude requests, learnt from Anthropic's rate-limit headers (pure, a fake clock)."""

import threading

import pytest

from braintrust_ops.outage_breaker import OutageBreaker
from braintrust_ops.rate_limiter import BASE_PAUSE_SECONDS, MAX_RETRY_AFTER_SECONDS, RateLimiter


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


def input_tokens(limit, remaining):
    return {
        "anthropic-ratelimit-input-tokens-limit": str(limit),
        "anthropic-ratelimit-input-tokens-remaining": str(remaining),
    }


def wait_of(limiter, tokens=0.0):
    with limiter._condition:
        return limiter._wait(tokens)


class ClockAdvancingCondition(threading.Condition):
    """The limiter's condition, but a wait moves the fake clock on by its timeout instead of sleeping:
    acquire() runs to its end in no real time, and the test sees how long it waited."""

    def __init__(self, clock, on_wait=None):
        super().__init__()
        self.clock = clock
        self.on_wait = on_wait
        self.waits = 0

    def wait(self, timeout=None):
        # Nothing notifies the limiter when the run stops: a wait without a timeout could last forever.
        assert timeout is not None, "acquire() waited without a timeout"
        # A wait of nothing, or one wait after another without end, would spin: fail instead of hanging.
        assert timeout > 0, "acquire() waited for no time"
        self.waits += 1
        assert self.waits < 10_000, "acquire() never let the request go"
        self.clock.now += timeout
        if self.on_wait is not None:
            self.on_wait()
        return False


def limiter_on_fake_time(clock, on_wait=None):
    limiter = RateLimiter(clock=clock)
    limiter._condition = ClockAdvancingCondition(clock, on_wait)
    return limiter


def test_before_any_reply_nothing_is_known_and_requests_go():
    assert wait_of(RateLimiter(clock=Clock())) <= 0


def test_before_any_reply_requests_go_whatever_the_clock_reads_at_first():
    # time.monotonic's starting point is undefined: it may read 0 when the run starts.
    clock = Clock()
    clock.now = 0.0
    assert wait_of(RateLimiter(clock=clock)) <= 0


def test_with_no_requests_left_the_next_one_waits_for_the_bucket_to_refill_at_the_limit_per_minute():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.observe(200, headers(limit=120, remaining=0))  # 120 a minute: one every half second
    assert wait_of(limiter) == 0.5
    clock.now += 0.25
    assert wait_of(limiter) == 0.25
    clock.now += 0.25
    assert wait_of(limiter) <= 0


def test_acquire_waits_until_the_bucket_has_refilled_then_lets_the_request_go():
    clock = Clock()
    limiter = limiter_on_fake_time(clock)
    limiter.observe(200, headers(limit=60, remaining=0))  # one a second
    assert limiter.acquire() is True
    assert clock.now == 1001.0


def test_a_stop_is_noticed_within_half_a_second_even_during_a_long_pause():
    clock = Clock()
    stop = threading.Event()
    # The run stops (another thread sets the event, notifying nobody) while acquire() waits.
    limiter = limiter_on_fake_time(clock, on_wait=stop.set)
    limiter.observe(429, {"retry-after": "3600"})
    assert limiter.acquire(stop=stop) is False
    assert clock.now - 1000.0 <= 0.5


def test_each_acquire_takes_one_request_from_the_bucket():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.observe(200, headers(limit=600, remaining=2))
    assert limiter.acquire() and wait_of(limiter) == 0  # one request left: the second goes at once
    assert limiter.acquire() and wait_of(limiter) > 0  # the third waits: 600 a minute refills one every 0.1 s


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


def test_every_429_counts_in_the_runs_report():
    limiter = RateLimiter(clock=Clock())
    for _ in range(3):
        limiter.observe(429, {"retry-after": "1"})
    limiter.observe(200, {})
    assert limiter.refused == 3


def test_after_a_429_requests_resume_at_the_refill_pace_not_at_the_count_the_server_just_contradicted():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.observe(200, headers(limit=60, remaining=10))
    limiter.observe(429, {"retry-after": "0"})  # refused although we counted ten left
    assert wait_of(limiter) == 1.0  # one request refilled at 60 a minute


def test_a_reply_with_a_remaining_count_but_no_limit_teaches_nothing():
    limiter = RateLimiter(clock=Clock())
    limiter.observe(200, {"anthropic-ratelimit-requests-remaining": "0"})
    assert wait_of(limiter) <= 0


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
    limiter.observe(200, input_tokens(limit=6000, remaining=100))
    assert wait_of(limiter, tokens=100) <= 0
    assert wait_of(limiter, tokens=300) == 2.0  # 200 more tokens at 100 a second


def test_the_older_tokens_headers_pace_input_tokens_when_the_input_tokens_ones_are_absent():
    limiter = RateLimiter(clock=Clock())
    limiter.observe(200, {"anthropic-ratelimit-tokens-limit": "6000", "anthropic-ratelimit-tokens-remaining": "100"})
    assert wait_of(limiter, tokens=300) == 2.0


def test_acquire_takes_the_request_s_input_tokens_from_the_token_bucket():
    limiter = RateLimiter(clock=Clock())
    limiter.observe(200, input_tokens(limit=6000, remaining=300))  # 100 a second
    assert limiter.acquire(200) is True
    assert wait_of(limiter, tokens=200) == 1.0  # 100 left: 100 more at 100 a second


def test_acquire_gives_up_when_the_run_stops():
    limiter = RateLimiter(clock=Clock())
    limiter.observe(429, {"retry-after": "3600"})
    stop = threading.Event()
    stop.set()
    assert limiter.acquire(stop=stop) is False


def test_a_stopped_run_starts_no_request_even_when_nothing_makes_it_wait():
    limiter = RateLimiter(clock=Clock())
    limiter.observe(200, headers(limit=60, remaining=1))
    stop = threading.Event()
    stop.set()
    assert limiter.acquire(stop=stop) is False
    assert wait_of(limiter) == 0  # the one request left was not taken


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


def test_a_reset_a_whole_second_away_sets_the_pace():
    limiter = RateLimiter(clock=Clock(), wall_clock=lambda: 1_800_000_000.0)
    limiter.observe(
        200, headers(limit=60, remaining=30, **{"anthropic-ratelimit-requests-reset": "2027-01-15T08:00:01Z"})
    )
    assert limiter._buckets["requests"].per_second == 30.0


def test_a_reset_less_than_a_second_away_leaves_the_limit_per_minute():
    # Half a second to refill 30 would be 60 a second: the whole bucket at once.
    limiter = RateLimiter(clock=Clock(), wall_clock=lambda: 1_800_000_000.5)
    limiter.observe(
        200, headers(limit=60, remaining=30, **{"anthropic-ratelimit-requests-reset": "2027-01-15T08:00:01Z"})
    )
    assert limiter._buckets["requests"].per_second == 1.0


@pytest.mark.parametrize(
    "retry_after, pause",
    [("inf", MAX_RETRY_AFTER_SECONDS), ("1e12", MAX_RETRY_AFTER_SECONDS), ("nan", BASE_PAUSE_SECONDS), ("-5", 0.0)],
)
def test_a_429s_retry_after_pauses_the_run_at_most_the_rate_limit_budget(retry_after, pause):
    """float() reads "inf": without a bound one such reply would pause every worker for good."""
    limiter = RateLimiter(clock=Clock())
    limiter.observe(429, {"retry-after": retry_after})
    assert max(wait_of(limiter), 0.0) == pause
