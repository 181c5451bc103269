"""The one retry layer every Braintrust request goes through, seen through the client against the sandbox."""

import io
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
import urllib3
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.btql_query import logs_filter, logs_query
from braintrust_ops.clients.braintrust import BraintrustClient
from braintrust_ops.clients.http import _check_whole_body
from braintrust_ops.exceptions import InvalidReply, TransientServiceError
from braintrust_ops_sandbox import BRAINTRUST_KEY, PROJECT_ID


def client_for(sandbox, **overrides) -> BraintrustClient:
    options = {"api_key": BRAINTRUST_KEY, "api_url": sandbox.url, "timeout": 5, "max_retries": 2, "backoff_seconds": 0}
    return BraintrustClient(**{**options, **overrides})


@pytest.mark.parametrize(
    "kind, options",
    [("status", {"status": 500}), ("status", {"status": 503}), ("drop", {}), ("invalid_json", {}), ("partial", {})],
)
def test_a_transient_failure_is_retried_and_the_request_succeeds(empty_sandbox, kind, options):
    empty_sandbox.state.add_tag("t", "dataset-tagging")
    empty_sandbox.faults.add("project_tag", kind, times=2, **options)
    assert [tag["name"] for tag in client_for(empty_sandbox).list_project_tags(PROJECT_ID)] == ["t"]
    assert empty_sandbox.count("project_tag") == 3


@pytest.mark.parametrize(
    "kind, options, message",
    [
        ("status", {"status": 503}, "kept failing with HTTP 503 after 3 attempts"),
        ("drop", {}, "could not connect after 3 attempts"),
        ("invalid_json", {}, "was not JSON after 3 attempts"),
        # A body shorter than its Content-Length: urllib3 2.x says so itself, 1.26 through _check_whole_body.
        ("partial", {}, "kept being cut off mid-reply after 3 attempts"),
    ],
)
def test_one_layer_of_retries_whatever_the_failure_and_the_message_counts_the_real_attempts(
    empty_sandbox, kind, options, message
):
    empty_sandbox.faults.add("project_tag", kind, times=None, **options)
    with pytest.raises(TransientServiceError, match=message):
        client_for(empty_sandbox, max_retries=2).list_project_tags(PROJECT_ID)
    assert empty_sandbox.count("project_tag") == 3


def test_a_garbled_reply_is_an_invalid_reply_after_the_retries(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "invalid_json", times=None)
    with pytest.raises(InvalidReply):
        client_for(empty_sandbox).list_project_tags(PROJECT_ID)


def test_a_reply_without_its_documented_list_is_not_retried(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "status", status=200, times=None)  # parses, but no 'objects'
    with pytest.raises(InvalidReply, match="no 'objects' list"):
        client_for(empty_sandbox).list_project_tags(PROJECT_ID)
    assert empty_sandbox.count("project_tag") == 1


def test_a_429_waits_for_retry_after_and_does_not_use_up_the_retries(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "status", status=429, retry_after=1, times=1)
    empty_sandbox.faults.add("project_tag", "status", status=500, times=1)
    started = time.monotonic()
    assert client_for(empty_sandbox, max_retries=1).list_project_tags(PROJECT_ID) == []
    assert time.monotonic() - started >= 0.9
    assert empty_sandbox.count("project_tag") == 3


def test_a_429_without_retry_after_backs_off_exponentially_within_the_budget(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "status", status=429, times=3)
    started = time.monotonic()
    client = client_for(empty_sandbox, max_retries=0, backoff_seconds=0.05, rate_limit_budget_seconds=10)
    assert client.list_project_tags(PROJECT_ID) == []
    # 0.05 + 0.1 + 0.2: each wait doubles the one before.
    assert 0.3 <= time.monotonic() - started < 2
    assert empty_sandbox.count("project_tag") == 4


def test_rate_limiting_past_the_budget_fails_naming_the_wait_the_attempts_and_the_setting(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "status", status=429, times=None)
    client = client_for(empty_sandbox, backoff_seconds=0.05, rate_limit_budget_seconds=0.5)
    with pytest.raises(
        TransientServiceError, match=r"kept rate-limiting .* over 4 attempts.*RATE_LIMIT_BUDGET_SECONDS"
    ):
        client.list_project_tags(PROJECT_ID)
    # 0.05 + 0.1 + 0.2 = 0.35 s waited; the next wait (0.4 s) would pass the 0.5 s budget.
    assert empty_sandbox.count("project_tag") == 4


def test_a_retry_after_longer_than_the_budget_fails_at_once(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "status", status=429, retry_after=600, times=None)
    started = time.monotonic()
    with pytest.raises(
        TransientServiceError, match=r"HTTP 429\): waited 0s over 1 attempt, and the next wait \(600s\)"
    ):
        client_for(empty_sandbox, rate_limit_budget_seconds=5).list_project_tags(PROJECT_ID)
    assert time.monotonic() - started < 2
    assert empty_sandbox.count("project_tag") == 1


def test_connection_refused_is_a_transient_error_naming_the_url_and_the_attempts():
    client = BraintrustClient(
        api_key="bt-unreachable-key-for-tests-0001",
        api_url="http://127.0.0.1:9",
        timeout=1,
        max_retries=1,
        backoff_seconds=0,
    )
    with pytest.raises(TransientServiceError, match="could not connect after 2 attempts .*127.0.0.1:9"):
        client.list_project_tags(PROJECT_ID)


def test_a_5xx_asking_for_a_long_retry_after_waits_at_most_a_minute(empty_sandbox, monkeypatch):
    from braintrust_ops.clients import http

    slept = []
    monkeypatch.setattr(http.time, "sleep", slept.append)  # the clock a test cannot wait out
    empty_sandbox.faults.add("project_tag", "status", status=503, retry_after=21600, times=1)
    assert client_for(empty_sandbox).list_project_tags(PROJECT_ID) == []
    assert slept == [http.MAX_BACKOFF_SECONDS]


def test_the_exponential_backoff_between_attempts_is_capped_at_a_minute(empty_sandbox, monkeypatch):
    """urllib3 1.26 caps it with a class attribute, 2.x with a constructor argument (_BudgetedRetry sets both)."""
    from braintrust_ops.clients import http

    slept = []
    monkeypatch.setattr(http.time, "sleep", slept.append)
    empty_sandbox.faults.add("project_tag", "status", status=503, times=3)
    assert client_for(empty_sandbox, max_retries=3, backoff_seconds=50).list_project_tags(PROJECT_ID) == []
    # The first retry goes at once (urllib3's backoff starts at the second); then 100 s and 200 s, capped.
    assert slept == [http.MAX_BACKOFF_SECONDS, http.MAX_BACKOFF_SECONDS]


def test_failures_of_every_kind_share_one_count_of_retries(empty_sandbox):
    for kind, options in (("drop", {}), ("status", {"status": 503}), ("invalid_json", {})):
        empty_sandbox.faults.add("project_tag", kind, times=2, **options)
    with pytest.raises(TransientServiceError, match="after 3 attempts"):
        client_for(empty_sandbox, max_retries=2).list_project_tags(PROJECT_ID)
    assert empty_sandbox.count("project_tag") == 3


def _read(body: bytes, content_length: int) -> requests.Response:
    """A reply read the way urllib3 1.26 reads one by default: without holding it to its Content-Length."""
    response = requests.Response()
    response.status_code = 200
    response.raw = urllib3.HTTPResponse(
        body=io.BytesIO(body),
        headers={"Content-Length": str(content_length)},
        status=200,
        preload_content=False,
        enforce_content_length=False,
    )
    _ = response.content
    return response


def test_a_body_shorter_than_its_content_length_is_cut_off_even_when_urllib3_hands_it_back():
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match=r"IncompleteRead\(4 bytes read, 6 more"):
        _check_whole_body(_read(b'{"a"', content_length=10))
    _check_whole_body(_read(b'{"a": 1}', content_length=8))  # whole: nothing to say


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_in_fractional_seconds_is_waited_out_not_a_crash(empty_sandbox, monkeypatch, status):
    """urllib3 raises InvalidHeader for ``Retry-After: 1.5`` (it takes whole seconds or a date only)."""
    from braintrust_ops.clients import http

    slept = []
    monkeypatch.setattr(http.time, "sleep", slept.append)
    empty_sandbox.faults.add("project_tag", "status", status=status, retry_after=1.5, times=1)
    assert client_for(empty_sandbox).list_project_tags(PROJECT_ID) == []
    assert slept == [1.5]


@pytest.mark.parametrize(
    "header, seconds",
    [
        ("2.25", 2.25),
        (" 3 ", 3.0),
        ("-4", 0.0),
        ("inf", float("inf")),
        ("nan", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # an HTTP-date in the past: at once
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date_and_nonsense_is_no_retry_after(header, seconds):
    from braintrust_ops.clients.http import _BudgetedRetry

    response = urllib3.HTTPResponse(body=b"", headers={"Retry-After": header}, status=429)
    assert _BudgetedRetry(total=1).get_retry_after(response) == seconds


# --- redirects: each hop is one send of the request's one loop (RetryingSession.send)


def _query() -> dict:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    return logs_query(project_id=PROJECT_ID, filter_=logs_filter(since=since), limit=10, cursor=None)


def test_a_redirect_before_each_failure_does_not_nest_a_retry_loop_in_the_retry_loop(empty_sandbox):
    """requests follows a redirect by calling Session.send again: with the loop in send, 12 sends for max_retries=2."""
    for _ in range(4):
        empty_sandbox.faults.add("btql", "redirect")
        empty_sandbox.faults.add("btql", "status", status=500, times=3)
    with pytest.raises(TransientServiceError, match="kept failing with HTTP 500 after 3 attempts"):
        client_for(empty_sandbox, max_retries=2).btql(_query())
    assert empty_sandbox.count("btql") == 3  # the redirect, then two 500s: the hop drew on the retries


@pytest.mark.parametrize("status", [307, 308])
def test_a_post_redirected_keeping_its_method_is_followed_and_the_hop_counted_as_an_attempt(empty_sandbox, status):
    empty_sandbox.state.add_log(input="Shabbat question", created=datetime.now(UTC) - timedelta(hours=1))
    empty_sandbox.faults.add("btql", "redirect", status=status)
    client = client_for(empty_sandbox, max_retries=2)
    rows, _cursor, _size = client.btql(_query())
    assert [row["input"] for row in rows] == ["Shabbat question"]  # the body went with the hop
    assert empty_sandbox.count("btql") == 2
    assert client.session.last_attempts().count == 2


def test_a_redirect_loop_ends_at_the_retry_bound_saying_the_api_kept_redirecting_and_which_setting_to_check(
    empty_sandbox,
):
    empty_sandbox.faults.add("project_tag", "redirect", times=None)
    with pytest.raises(TransientServiceError) as raised:
        client_for(empty_sandbox, max_retries=2).list_project_tags(PROJECT_ID)
    assert str(raised.value) == (
        f"Braintrust GET /v1/project_tag kept redirecting after 3 attempts ({empty_sandbox.url}), and its API "
        "documents no redirect: check BRAINTRUST_API_URL, then run again."
    )
    assert empty_sandbox.count("project_tag") == 3


# One send of GET /v1/project_tag: the fault the sandbox plays, and the message the client ends with when
# it is the last one the retries allow. A 429 uses no retry (its own wait budget, here zero waits).
REDIRECTS = [("redirect", {"status": status}) for status in (301, 302, 303, 307, 308)]
LAST_WORDS = {
    "redirect": "kept redirecting after {}",
    "drop": "could not connect after {}",
    "status": "kept failing with HTTP 503 after {}",
    "invalid_json": "was not JSON after {}",
}
SENDS = [*REDIRECTS, ("drop", {}), ("status", {"status": 503}), ("invalid_json", {})]
RATE_LIMITED = ("status", {"status": 429, "retry_after": 0})
ANSWER = ("latency", {"delay": 0})  # the route's real reply


@given(
    max_retries=st.integers(min_value=0, max_value=3),
    faults=st.lists(st.sampled_from([*SENDS, RATE_LIMITED, ANSWER]), max_size=8),
)
def test_whatever_mix_of_redirects_and_failures_a_request_meets_its_sends_are_bounded_and_counted(
    empty_sandbox, max_retries, faults
):
    empty_sandbox.faults.clear()
    for kind, options in faults:
        empty_sandbox.faults.add("project_tag", kind, **options)
    before = empty_sandbox.count("project_tag")
    # Every send but a 429 draws on the retries; the one that finds none left ends the request.
    drawn, ending, sends = 0, None, 0
    for fault in [*faults, ANSWER]:
        sends += 1
        if fault in SENDS:
            drawn += 1
            if drawn > max_retries:
                ending = fault
                break
        elif fault == ANSWER:
            break
    client = client_for(empty_sandbox, max_retries=max_retries)
    try:
        if ending is None:
            assert client.list_project_tags(PROJECT_ID) == []
        else:
            attempts = f"{sends} attempt" if sends == 1 else f"{sends} attempts"
            with pytest.raises(TransientServiceError, match=LAST_WORDS[ending[0]].format(attempts) + r"\b"):
                client.list_project_tags(PROJECT_ID)
        assert client.session.last_attempts().count == sends
    finally:
        client.close()
    assert empty_sandbox.count("project_tag") - before == sends
    assert sends - faults[:sends].count(RATE_LIMITED) <= max_retries + 1
