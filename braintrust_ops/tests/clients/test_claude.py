"""The Anthropic client against the sandbox, through the real SDK: a reply read, and each failure turned
into the app's error that tells the run what to do (``services/tagging/dispatch.py``): LogRefused, the
log's own fault; AuthenticationFailed and the other PermanentServiceErrors, a setup that fails every call;
TransientServiceError (InvalidReply among them), the service failing, which says nothing about the log."""

import threading
import time

import anthropic
import pytest
from anthropic._models import construct_type_unchecked
from anthropic.types import Message
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.clients.claude import (
    SDK_HTTP,
    ClaudeClient,
    LogRefused,
    RunStopping,
    _input_token_estimate,
    tool_reply,
)
from braintrust_ops.exceptions import (
    AuthenticationFailed,
    InvalidReply,
    PermanentServiceError,
    TransientServiceError,
)
from braintrust_ops.rate_limiter import RateLimiter
from braintrust_ops.taggable_tags import TaggableTag
from braintrust_ops.tagging_prompt import build_tool
from braintrust_ops.tests.strategies import mutated
from braintrust_ops_sandbox import ANTHROPIC_KEY

MODEL = "claude-haiku-4-5"
TOOL = build_tool([TaggableTag("halacha", "Questions of Jewish law"), TaggableTag("sources", "")], strict=False)


def client_for(sandbox, **overrides) -> ClaudeClient:
    options = {
        "api_key": ANTHROPIC_KEY,
        "base_url": sandbox.url,
        "model": MODEL,
        "timeout": 5,
        "max_retries": 2,
        "max_output_tokens": 200,
    }
    return ClaudeClient(**{**options, **overrides})


def ask(client: ClaudeClient, text: str = "Is it permitted to cook on Shabbat?"):
    return client.call_tool(system="Tag the log.", user_text=text, tool=TOOL)


def test_a_forced_tool_reply_gives_the_tools_input_and_the_usage(empty_sandbox):
    reply = ask(client_for(empty_sandbox))
    assert reply.tool_input == {"tags": ["halacha"]} and reply.stop_reason == "tool_use"
    assert reply.input_tokens > 0 and reply.output_tokens > 0
    request = empty_sandbox.claude_requests[0]
    assert request["model"] == MODEL and request["tool_choice"] == {"type": "tool", "name": TOOL["name"]}


@pytest.mark.parametrize("status, error_type", [(400, "invalid_request_error"), (413, "request_too_large")])
def test_a_refused_request_is_that_logs_fault_and_the_next_log_is_answered(empty_sandbox, status, error_type):
    empty_sandbox.faults.add("messages", "status", status=status, times=1)
    client = client_for(empty_sandbox)
    with pytest.raises(LogRefused) as raised:
        ask(client)
    assert raised.value.status == status and raised.value.service == "Anthropic"
    assert str(raised.value) == (
        f"Anthropic refused this log's request with HTTP {status} ({error_type}): sandbox fault: HTTP {status}"
    )
    assert empty_sandbox.count("messages") == 1  # not retried: the same request would be refused again
    assert not client.stop.is_set()
    assert ask(client, "What is the source of this Rashi?").tool_input == {"tags": ["sources"]}


def test_an_unknown_model_is_a_permanent_error_naming_the_model_setting_not_the_logs_fault(empty_sandbox):
    empty_sandbox.faults.add("messages", "status", status=404, times=None)
    with pytest.raises(PermanentServiceError) as raised:
        ask(client_for(empty_sandbox))
    assert not isinstance(raised.value, LogRefused) and raised.value.status == 404
    assert str(raised.value) == (
        f"Anthropic rejected the request with HTTP 404 (not_found_error); check BRAINTRUST_OPS_TAGGING_MODEL ({MODEL})."
    )
    assert empty_sandbox.count("messages") == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_one_request_and_a_permanent_error_naming_the_base_url_not_the_model(empty_sandbox, status):
    """Anthropic's API sends no redirect: one means the base URL is wrong, on every call. Followed, a redirect loop
    cost the SDK's 20 hops on each of its attempts (63 requests at max_retries=2)."""
    empty_sandbox.faults.add("messages", "redirect", status=status, times=None)
    with pytest.raises(PermanentServiceError) as raised:
        ask(client_for(empty_sandbox, max_retries=2))
    assert not isinstance(raised.value, LogRefused) and raised.value.status == status
    assert str(raised.value) == (
        f"Anthropic's address answered HTTP {status}, a redirect, which Anthropic's API never sends: "
        "check ANTHROPIC_BASE_URL and any proxy on the way."
    )
    assert empty_sandbox.count("messages") == 1


def test_a_redirect_elsewhere_says_to_which_host_and_not_its_path_or_query(empty_sandbox):
    location = "http://127.0.0.2:9/portal/login?session=abc123"  # on loopback: nothing listens there
    empty_sandbox.faults.add("messages", "redirect", status=302, location=location, times=None)
    with pytest.raises(PermanentServiceError, match=r"HTTP 302, a redirect to 127\.0\.0\.2, which") as raised:
        ask(client_for(empty_sandbox))
    assert "portal" not in str(raised.value) and "abc123" not in str(raised.value)
    assert empty_sandbox.count("messages") == 1


def test_a_refused_key_is_authentication_failed_at_once(empty_sandbox):
    with pytest.raises(AuthenticationFailed) as raised:
        ask(client_for(empty_sandbox, api_key="sk-wrong-key-for-tests-000000"))
    assert raised.value.status == 401
    assert str(raised.value) == "Anthropic refused the API key (HTTP 401). Check ANTHROPIC_API_KEY."
    assert empty_sandbox.count("messages") == 1


def test_a_reply_slower_than_the_timeout_is_a_transient_failure_after_the_sdks_retries(empty_sandbox):
    empty_sandbox.claude_latency = 1.0
    with pytest.raises(TransientServiceError) as raised:
        ask(client_for(empty_sandbox, timeout=0.3, max_retries=1))
    assert not isinstance(raised.value, InvalidReply)
    assert str(raised.value) == "Claude did not answer in time, even after retries."
    assert empty_sandbox.count("messages") == 2  # the first attempt and the SDK's one retry


@pytest.mark.parametrize("kind", ["invalid_json", "proxy_page", "not_utf8"])
def test_a_garbled_reply_is_invalid_reply_at_once_and_the_next_call_is_answered(empty_sandbox, kind):
    empty_sandbox.faults.add("messages", kind, times=1)
    client = client_for(empty_sandbox, max_retries=2)
    with pytest.raises(InvalidReply) as raised:
        ask(client)
    assert isinstance(raised.value, TransientServiceError)  # the service's failure, not the log's
    assert str(raised.value) == "Anthropic's reply could not be read as a Message."
    assert empty_sandbox.count("messages") == 1  # neither the SDK nor the client asks again
    assert ask(client).tool_input == {"tags": ["halacha"]}


def test_a_reply_that_parses_but_holds_no_message_content_is_invalid_reply(empty_sandbox):
    empty_sandbox.faults.add("messages", "status", status=200, times=1)  # {"error": ...} with a 200
    with pytest.raises(InvalidReply, match="could not be read as a Message"):
        ask(client_for(empty_sandbox))
    assert empty_sandbox.count("messages") == 1


# A Message as the API documents it (types/message.py), and the ways a field of it can come in another shape.
MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [{"type": "tool_use", "id": "toolu_01", "name": "record_tags", "input": {"tags": ["halacha"]}}],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 120, "output_tokens": 9},
}


@pytest.mark.parametrize(
    "change",
    [
        {"content": [7]},
        {"content": [{"name": "record_tags", "input": {"tags": []}}]},
        {"usage": {"input_tokens": "120", "output_tokens": 9}},
        {"usage": {"input_tokens": 120, "output_tokens": -1}},
        {"usage": {"input_tokens": True, "output_tokens": 9}},
        {"usage": {}},
        {"usage": 7},
    ],
    ids=[
        "block_not_an_object",
        "block_without_type",
        "count_as_text",
        "count_negative",
        "count_a_boolean",
        "usage_without_counts",
        "usage_not_an_object",
    ],
)
def test_a_message_with_a_field_of_another_shape_is_invalid_reply_not_a_crash_nor_a_log_fault(empty_sandbox, change):
    empty_sandbox.faults.add("messages", "reply", body={**MESSAGE, **change}, times=1)
    with pytest.raises(InvalidReply, match="could not be read as a Message"):
        ask(client_for(empty_sandbox))


def test_a_message_without_a_usable_stop_reason_or_usage_still_gives_its_tool_input(empty_sandbox):
    empty_sandbox.faults.add("messages", "reply", body={**MESSAGE, "stop_reason": 7, "usage": None}, times=1)
    reply = ask(client_for(empty_sandbox))
    assert (reply.tool_input, reply.stop_reason, reply.input_tokens, reply.output_tokens) == (
        {"tags": ["halacha"]},
        None,
        0,
        0,
    )


def test_one_log_costs_at_most_max_retries_plus_one_requests_through_5xx_drops_and_garbled_replies(empty_sandbox):
    """Issue 19: a loop over garbled replies on top of the SDK's retries sent (max_retries + 1) squared."""
    for _ in range(3):
        empty_sandbox.faults.add("messages", "status", status=500, retry_after=0.001)
        empty_sandbox.faults.add("messages", "drop")
        empty_sandbox.faults.add("messages", "invalid_json")
    with pytest.raises(InvalidReply):
        ask(client_for(empty_sandbox, max_retries=2))
    assert empty_sandbox.count("messages") == 3


# What the sandbox does with one messages request, and what the SDK makes of it: a status it retries (5xx,
# 529, 429, each with a short retry-after so the SDK's wait is short), a garbled 200, or the real reply.
RETRIED = [("status", {"status": status, "retry_after": 0.001}) for status in (429, 500, 503, 529)]
GARBLED = [("invalid_json", {}), ("proxy_page", {}), ("not_utf8", {})]
ANSWER = ("latency", {"delay": 0})  # the route's real reply


@given(
    max_retries=st.integers(min_value=0, max_value=3),
    faults=st.lists(st.sampled_from([*RETRIED, *GARBLED, ANSWER]), max_size=6),
)
def test_whatever_sequence_of_faults_a_log_meets_it_costs_the_sdks_attempts_and_no_more(
    empty_sandbox, max_retries, faults
):
    empty_sandbox.faults.clear()
    for kind, options in faults:
        empty_sandbox.faults.add("messages", kind, **options)
    before = empty_sandbox.count("messages")
    # The SDK's loop alone: an answer or a garbled reply ends it; a retried status goes on while retries are left.
    ends = next((at for at, fault in enumerate(faults) if fault not in RETRIED), len(faults))
    expected = min(ends + 1, max_retries + 1)
    met = faults[expected - 1] if expected <= len(faults) else ANSWER
    client = client_for(empty_sandbox, max_retries=max_retries)
    try:
        if met in RETRIED:
            with pytest.raises(TransientServiceError) as raised:
                ask(client)
            assert not isinstance(raised.value, InvalidReply)
        elif met in GARBLED:
            with pytest.raises(InvalidReply):
                ask(client)
        else:
            assert ask(client).tool_input == {"tags": ["halacha"]}
    finally:
        client.close()
    assert empty_sandbox.count("messages") - before == expected <= max_retries + 1


# --- pacing: every attempt through the run's limiter (_PacedAnthropic, the same hooks in anthropic 0.x and 2.x)


def test_every_attempt_the_sdks_retries_included_tells_the_limiter_what_its_reply_said(empty_sandbox):
    empty_sandbox.faults.add("messages", "status", status=429, retry_after=0, times=1)
    limiter = RateLimiter()
    assert ask(client_for(empty_sandbox, limiter=limiter)).tool_input == {"tags": ["halacha"]}
    assert empty_sandbox.count("messages") == 2  # the 429, then the SDK's retry
    assert limiter.refused == 1  # seen on the attempt the SDK retried, not only on the last one


def test_a_run_already_stopping_sends_nothing_and_the_call_raises_run_stopping(empty_sandbox):
    client = client_for(empty_sandbox)
    client.stop.set()
    with pytest.raises(RunStopping):
        ask(client)
    assert empty_sandbox.count("messages") == 0


def test_a_retry_waits_its_turn_at_the_limiter_and_a_stop_meanwhile_ends_the_call_without_another_attempt(
    empty_sandbox,
):
    """A 429 without retry-after pauses the limiter for a second (rate_limiter.BASE_PAUSE_SECONDS); the SDK's own
    backoff is shorter, so its retry waits at the limiter, where the stop finds it: RunStopping at once, neither
    retried by the SDK nor turned into a connection error."""
    empty_sandbox.faults.add("messages", "status", status=429, times=None)
    client = client_for(empty_sandbox, max_retries=5)

    def stop_after_the_first_attempt() -> None:
        while empty_sandbox.count("messages") < 1:
            time.sleep(0.01)
        client.stop.set()

    stopper = threading.Thread(target=stop_after_the_first_attempt)
    stopper.start()
    started = time.monotonic()
    with pytest.raises(RunStopping):
        ask(client)
    stopper.join()
    assert empty_sandbox.count("messages") == 1
    assert time.monotonic() - started < 3  # not the SDK's five backoffs


def test_the_sdks_retries_still_apply_through_the_paced_http_client(empty_sandbox):
    empty_sandbox.faults.add("messages", "status", status=500, times=2)
    assert ask(client_for(empty_sandbox, max_retries=2)).tool_input == {"tags": ["halacha"]}
    assert empty_sandbox.count("messages") == 3
    empty_sandbox.faults.add("messages", "status", status=500, times=None)
    with pytest.raises(TransientServiceError, match="HTTP 500"):
        ask(client_for(empty_sandbox, max_retries=1))
    assert empty_sandbox.count("messages") == 5


@pytest.mark.parametrize(
    "content, estimate",
    [
        (b'{"system": "abcd", "messages": "efgh", "tools": "not counted"}', 2.0),
        (b'{"model": "m"}', 0.0),
        (b'["not", "an", "object"]', 0.0),
        (b"not json", 0.0),
    ],
)
def test_the_limiters_token_estimate_counts_the_system_prompt_and_messages_of_the_body_sent(content, estimate):
    assert _input_token_estimate(content) == estimate


def test_the_http_library_read_from_the_sdk_is_the_one_its_client_is_built_on():
    """httpx under anthropic 0.x, httpx2 under 1.x and later: the errors a results stream raises mid-way."""
    http_client = anthropic.DefaultHttpxClient()
    try:
        assert isinstance(http_client, SDK_HTTP.Client)
    finally:
        http_client.close()
    assert issubclass(SDK_HTTP.RemoteProtocolError, SDK_HTTP.HTTPError)


@given(body=mutated(MESSAGE))
def test_whatever_shape_a_message_comes_in_it_gives_a_usable_reply_or_one_invalid_reply(body):
    # Built as both SDKs build a reply: construct_type_unchecked (anthropic/_models.py, 0.85 and 2.16).
    message = construct_type_unchecked(value=body, type_=Message)
    try:
        reply = tool_reply(message, "record_tags")
    except InvalidReply as exc:
        assert str(exc) == "Anthropic's reply could not be read as a Message."
    else:
        assert type(reply.input_tokens) is int and type(reply.output_tokens) is int
        assert reply.input_tokens >= 0 and reply.output_tokens >= 0
        assert reply.stop_reason is None or isinstance(reply.stop_reason, str)
