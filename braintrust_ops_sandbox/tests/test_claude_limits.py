"""Anthropic's rate limits in the sandbox: token buckets, the anthropic-ratelimit-* headers, 429s, scaled time."""

import time
from datetime import UTC, datetime

import anthropic
import pytest
import requests

from braintrust_ops_sandbox import ANTHROPIC_KEY
from braintrust_ops_sandbox.claude_limits import ClaudeRateLimits

BUCKETS = ("requests", "tokens", "input-tokens", "output-tokens")
HELLO = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Is it Shabbat?"}]}


def client(sandbox, max_retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=sandbox.url, max_retries=max_retries)


def ask_raw(sandbox, **overrides):
    """The raw reply (headers and all) of one messages request."""
    return client(sandbox).messages.with_raw_response.create(**{**HELLO, **overrides})


def refused(sandbox, **overrides) -> anthropic.RateLimitError:
    with pytest.raises(anthropic.RateLimitError) as raised:
        ask_raw(sandbox, **overrides)
    return raised.value


def rfc3339(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def control(sandbox, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox/{path}", timeout=5, **kwargs)


class FakeClocks:
    """A monotonic clock and a wall clock that move together."""

    def __init__(self):
        self.now = 1000.0
        self.wall = datetime(2026, 11, 24, 10, 0, tzinfo=UTC).timestamp()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall + (self.now - 1000.0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fake_limits() -> tuple[ClaudeRateLimits, FakeClocks]:
    clocks = FakeClocks()
    return ClaudeRateLimits(clock=clocks.monotonic, wall_clock=clocks.time), clocks


# --- headers on a success -----------------------------------------------------------------------


def test_a_reply_carries_limit_remaining_and_reset_for_every_bucket_charged_with_its_usage(empty_sandbox):
    empty_sandbox.claude_limits.set(
        requests_per_minute=50, input_tokens_per_minute=40_000, output_tokens_per_minute=8_000
    )
    raw = ask_raw(empty_sandbox)
    usage = raw.parse().usage
    headers = raw.headers
    assert [headers[f"anthropic-ratelimit-{b}-limit"] for b in ("requests", "input-tokens", "output-tokens")] == [
        "50",
        "40000",
        "8000",
    ]
    assert headers["anthropic-ratelimit-requests-remaining"] == "49"
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == str(40_000 - usage.input_tokens)
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == str(8_000 - usage.output_tokens)
    now = time.time()
    for bucket in BUCKETS:
        # Full again within the minute (a bucket refills continuously), rounded up to the second.
        assert now - 1 < rfc3339(headers[f"anthropic-ratelimit-{bucket}-reset"]).timestamp() <= now + 61
    assert "retry-after" not in headers


def test_the_tokens_headers_repeat_the_token_bucket_with_fewer_tokens_left(empty_sandbox):
    empty_sandbox.claude_limits.set(input_tokens_per_minute=100_000, output_tokens_per_minute=500)
    headers = ask_raw(empty_sandbox).headers
    assert headers["anthropic-ratelimit-tokens-limit"] == "500"
    assert headers["anthropic-ratelimit-tokens-remaining"] == headers["anthropic-ratelimit-output-tokens-remaining"]
    assert "anthropic-ratelimit-requests-limit" not in headers  # a dimension not set is not limited


def test_no_limit_set_means_no_ratelimit_headers_and_every_request_counted_as_accepted(empty_sandbox):
    headers = ask_raw(empty_sandbox).headers
    assert not [name for name in headers if name.startswith("anthropic-ratelimit-")]
    assert (empty_sandbox.claude_limits.accepted, empty_sandbox.claude_limits.refused) == (1, 0)


# --- 429 ----------------------------------------------------------------------------------------


def test_over_the_requests_per_minute_a_429_rate_limit_error_with_retry_after_and_the_headers(empty_sandbox):
    empty_sandbox.claude_limits.set(requests_per_minute=2)
    ask_raw(empty_sandbox)
    ask_raw(empty_sandbox)
    error = refused(empty_sandbox)
    assert error.status_code == 429
    assert error.body["type"] == "error" and error.body["error"]["type"] == "rate_limit_error"
    assert "2 requests per minute" in error.body["error"]["message"]
    headers = error.response.headers
    # One request comes back every 30 s; the refusal says so in whole seconds.
    assert headers["retry-after"] in {"29", "30"}
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-requests-limit"] == "2"
    assert (empty_sandbox.claude_limits.accepted, empty_sandbox.claude_limits.refused) == (2, 1)


def test_a_request_over_the_input_tokens_per_minute_is_refused_and_a_smaller_one_still_passes(empty_sandbox):
    small = HELLO["messages"]
    big = [{"role": "user", "content": "Shabbat " * 400}]  # about 800 tokens by the fake's estimate
    empty_sandbox.claude_limits.set(input_tokens_per_minute=500)
    error = refused(empty_sandbox, messages=big)
    assert "500 input tokens per minute" in error.body["error"]["message"]
    assert error.response.headers["anthropic-ratelimit-input-tokens-remaining"] == "500"  # nothing charged
    assert ask_raw(empty_sandbox, messages=small).http_response.status_code == 200


def test_retry_after_can_be_switched_off(empty_sandbox):
    empty_sandbox.claude_limits.set(requests_per_minute=1, retry_after=False)
    ask_raw(empty_sandbox)
    headers = refused(empty_sandbox).response.headers
    assert "retry-after" not in headers and headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_a_refused_request_leaves_its_scripted_reply_for_the_next_request(empty_sandbox):
    empty_sandbox.claude_limits.set(requests_per_minute=1, time_scale=60)
    ask_raw(empty_sandbox)
    empty_sandbox.claude_replies.push({"text": "scripted"})
    refused(empty_sandbox)
    time.sleep(1.05)
    assert ask_raw(empty_sandbox).parse().content[0].text == "scripted"


# --- the bucket ---------------------------------------------------------------------------------


def test_refused_requests_do_not_consume_the_bucket():
    limits, clocks = fake_limits()
    limits.set(requests_per_minute=2)
    assert limits.admit(input_tokens=1, output_tokens=1).accepted
    assert limits.admit(input_tokens=1, output_tokens=1).accepted
    assert [limits.admit(input_tokens=1, output_tokens=1).accepted for _ in range(5)] == [False] * 5
    clocks.advance(30)  # one request's worth refilled, however many refusals came in between
    assert limits.admit(input_tokens=1, output_tokens=1).accepted
    assert (limits.accepted, limits.refused) == (3, 5)


def test_the_bucket_refills_continuously_and_reset_is_when_it_is_full():
    limits, clocks = fake_limits()
    limits.set(output_tokens_per_minute=600)  # 10 tokens a second
    limits.admit(input_tokens=1, output_tokens=600)
    clocks.advance(6)
    decision = limits.admit(input_tokens=1, output_tokens=50)
    assert decision.accepted
    assert decision.headers["anthropic-ratelimit-output-tokens-remaining"] == "10"  # 60 refilled - 50
    # 590 missing at 10 a second: full 59 s from now.
    assert rfc3339(decision.headers["anthropic-ratelimit-output-tokens-reset"]).timestamp() == clocks.time() + 59
    refusal = limits.admit(input_tokens=1, output_tokens=40)
    assert (refusal.accepted, refusal.retry_after, refusal.exceeded) == (False, "3", ["output-tokens"])


def test_retry_after_is_the_longest_wait_among_the_short_buckets():
    limits, clocks = fake_limits()
    limits.set(requests_per_minute=60, input_tokens_per_minute=60)
    limits.admit(input_tokens=60, output_tokens=0)
    refusal = limits.admit(input_tokens=30, output_tokens=0)
    assert refusal.exceeded == ["input-tokens"] and refusal.retry_after == "30"


@pytest.mark.parametrize(
    "options",
    [
        {"requests_per_minute": 0},
        {"input_tokens_per_minute": 1.5},
        {"time_scale": 0},
        {"output_tokens_per_minute": True},
    ],
)
def test_a_bad_limit_is_refused(options):
    with pytest.raises(ValueError):
        ClaudeRateLimits().set(**options)


# --- scaled time --------------------------------------------------------------------------------


def test_time_scale_refills_a_minute_faster_and_the_headers_keep_per_minute_limits_and_real_times(empty_sandbox):
    empty_sandbox.claude_limits.set(requests_per_minute=1, time_scale=120)  # a "minute" is 0.5 s
    ask_raw(empty_sandbox)
    before = time.time()
    error = refused(empty_sandbox)
    headers = error.response.headers
    assert headers["anthropic-ratelimit-requests-limit"] == "1"
    wait = float(headers["retry-after"])
    assert 0.3 < wait <= 0.5 and "." in headers["retry-after"]
    reset = rfc3339(headers["anthropic-ratelimit-requests-reset"]).timestamp()
    assert before < reset <= before + 0.6
    time.sleep(wait)
    assert ask_raw(empty_sandbox).headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_the_sdk_waits_as_retry_after_says_and_gets_through(empty_sandbox):
    empty_sandbox.claude_limits.set(requests_per_minute=1, time_scale=60)  # a request back each second
    claude = client(empty_sandbox, max_retries=2)
    claude.messages.create(**HELLO)
    started = time.monotonic()
    claude.messages.create(**HELLO)
    assert 0.5 < time.monotonic() - started < 3
    assert (empty_sandbox.claude_limits.accepted, empty_sandbox.claude_limits.refused) == (2, 1)


# --- control API --------------------------------------------------------------------------------


def test_put_get_delete_claude_limits(empty_sandbox):
    body = {"requests_per_minute": 1, "output_tokens_per_minute": 1000, "time_scale": 2, "retry_after": False}
    settings = control(empty_sandbox, "PUT", "claude_limits", json=body).json()
    assert settings == {**body, "input_tokens_per_minute": None, "time_scale": 2.0, "accepted": 0, "refused": 0}
    ask_raw(empty_sandbox)
    refused(empty_sandbox)
    counts = control(empty_sandbox, "GET", "claude_limits").json()
    assert (counts["accepted"], counts["refused"]) == (1, 1)
    lifted = control(empty_sandbox, "DELETE", "claude_limits").json()
    assert lifted["requests_per_minute"] is None and lifted["refused"] == 1
    assert ask_raw(empty_sandbox).http_response.status_code == 200


@pytest.mark.parametrize("body", [{"requests_per_minute": 0}, {"time_scale": -1}, {"per_minute": 5}])
def test_a_bad_claude_limits_body_gets_400(empty_sandbox, body):
    assert control(empty_sandbox, "PUT", "claude_limits", json=body).status_code == 400
