"""The real services' limits in the sandbox: rate limits per route and request body sizes."""

import time

import anthropic
import pytest
import requests

from braintrust_ops_sandbox import ANTHROPIC_KEY, BRAINTRUST_KEY
from braintrust_ops_sandbox.limits import BRAINTRUST_MAX_REQUEST_BYTES, RateLimits

AUTH = {"Authorization": f"Bearer {BRAINTRUST_KEY}"}


def tags(sandbox) -> requests.Response:
    return requests.get(f"{sandbox.url}/v1/project_tag", headers=AUTH, timeout=5)


def insert(sandbox, dataset_id: str, text_bytes: int, session=requests) -> requests.Response:
    events = {"events": [{"id": "big", "input": "x" * text_bytes}]}
    return session.post(f"{sandbox.url}/v1/dataset/{dataset_id}/insert", headers=AUTH, json=events, timeout=10)


def control(sandbox, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox/{path}", timeout=5, **kwargs)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- rate limits --------------------------------------------------------------------------------


def test_a_route_over_its_rate_limit_gets_429_with_retry_after_in_whole_seconds(empty_sandbox):
    empty_sandbox.rate_limits.set("project_tag", requests=2, per_seconds=30)
    replies = [tags(empty_sandbox) for _ in range(3)]
    assert [reply.status_code for reply in replies] == [200, 200, 429]
    assert replies[2].headers["Retry-After"] in {"29", "30"} and "error" in replies[2].json()


def test_a_429_without_retry_after_when_the_limit_says_so(empty_sandbox):
    empty_sandbox.rate_limits.set("project_tag", requests=1, per_seconds=30, retry_after=False)
    tags(empty_sandbox)
    refused = tags(empty_sandbox)
    assert refused.status_code == 429 and "Retry-After" not in refused.headers


def test_the_window_slides_so_a_request_after_it_gets_through(empty_sandbox):
    empty_sandbox.rate_limits.set("project_tag", requests=1, per_seconds=0.3)
    assert [tags(empty_sandbox).status_code for _ in range(2)] == [200, 429]
    time.sleep(0.35)
    assert tags(empty_sandbox).status_code == 200


def test_refused_requests_do_not_count_against_the_window():
    clock = FakeClock()
    limits = RateLimits(clock=clock)
    limits.set("btql", requests=2, per_seconds=10)
    assert limits.admit("btql") is None  # t=0
    clock.now += 6
    assert limits.admit("btql") is None  # t=6
    clock.now += 1
    assert [limits.admit("btql").retry_after for _ in range(5)] == [3] * 5  # t=7: the t=0 slot frees at 10
    clock.now += 3.5
    assert limits.admit("btql") is None  # t=10.5: refusals at t=7 did not push the window on


def test_retry_after_rounds_a_fraction_of_a_second_up_to_one():
    clock = FakeClock()
    limits = RateLimits(clock=clock)
    limits.set("btql", requests=1, per_seconds=0.25)
    limits.admit("btql")
    assert limits.admit("btql").retry_after == 1


def test_a_rate_limited_messages_request_gets_anthropics_error_body(empty_sandbox):
    empty_sandbox.rate_limits.set("messages", requests=1, per_seconds=60)
    claude = anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=empty_sandbox.url, max_retries=0)
    hello = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}
    claude.messages.create(**hello)
    with pytest.raises(anthropic.RateLimitError) as raised:
        claude.messages.create(**hello)
    assert raised.value.response.json()["error"]["type"] == "rate_limit_error"


def test_count_includes_rate_limited_requests_and_rate_limited_counts_only_those(empty_sandbox):
    empty_sandbox.rate_limits.set("project_tag", requests=1, per_seconds=60)
    empty_sandbox.faults.add("project_tag", "status", status=429)
    statuses = [tags(empty_sandbox).status_code for _ in range(3)]
    assert statuses == [429, 429, 429]  # a 429 fault (accepted by the limiter), then two from the limiter
    assert (empty_sandbox.count("project_tag"), empty_sandbox.rate_limited("project_tag")) == (3, 2)
    assert control(empty_sandbox, "GET", "rate_limited").json() == {"project_tag": 2}


def test_rate_limits_clear_lifts_every_limit(empty_sandbox):
    empty_sandbox.rate_limits.set("project_tag", requests=1, per_seconds=60)
    tags(empty_sandbox)
    empty_sandbox.rate_limits.clear()
    assert tags(empty_sandbox).status_code == 200


def test_post_and_delete_rate_limits_set_and_lift_a_limit(empty_sandbox):
    body = {"route": "project_tag", "requests": 1, "per_seconds": 60, "retry_after": False}
    assert control(empty_sandbox, "POST", "rate_limits", json=body).status_code == 201
    assert control(empty_sandbox, "GET", "rate_limits").json()["rate_limits"]["project_tag"]["requests"] == 1
    assert [tags(empty_sandbox).status_code for _ in range(2)] == [200, 429]
    control(empty_sandbox, "DELETE", "rate_limits")
    assert tags(empty_sandbox).status_code == 200


@pytest.mark.parametrize(
    "options", [{"route": "nope", "requests": 1, "per_seconds": 1}, {"route": "btql", "requests": 0, "per_seconds": 1}]
)
def test_a_bad_rate_limit_is_refused(empty_sandbox, options):
    assert control(empty_sandbox, "POST", "rate_limits", json=options).status_code == 400


# --- request size -------------------------------------------------------------------------------


def test_braintrust_routes_default_to_the_sdks_6_mib_limit_and_messages_to_none(empty_sandbox):
    assert BRAINTRUST_MAX_REQUEST_BYTES == 6 * 1024 * 1024
    limits = empty_sandbox.request_size_limits
    assert limits["dataset_insert"] == limits["btql"] == BRAINTRUST_MAX_REQUEST_BYTES
    assert limits.get("messages") is None


def test_a_body_over_the_limit_gets_413_naming_both_sizes_and_the_connection_serves_the_next_request(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("evals", "")
    with requests.Session() as session:
        refused = insert(empty_sandbox, dataset["id"], BRAINTRUST_MAX_REQUEST_BYTES, session)
        length = int(refused.request.headers["Content-Length"])
        assert refused.status_code == 413
        assert refused.json() == {
            "error": f"request body of {length} bytes is over the limit of {BRAINTRUST_MAX_REQUEST_BYTES} bytes"
        }
        assert insert(empty_sandbox, dataset["id"], 1000, session).status_code == 200
    assert empty_sandbox.state.dataset_rows(dataset["id"])[0]["input"] == "x" * 1000


def test_a_body_at_the_limit_is_accepted(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("evals", "")
    overhead = len(b'{"events": [{"id": "big", "input": ""}]}')
    empty_sandbox.request_size_limits["dataset_insert"] = 500
    assert insert(empty_sandbox, dataset["id"], 500 - overhead).status_code == 200
    assert insert(empty_sandbox, dataset["id"], 501 - overhead).status_code == 413


def test_the_size_limit_status_switch_makes_it_a_400_that_says_the_request_is_too_large(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("evals", "")
    empty_sandbox.request_size_limits["dataset_insert"] = 100
    empty_sandbox.size_limit_status = 400
    refused = insert(empty_sandbox, dataset["id"], 200)
    assert refused.status_code == 400 and "too large" in refused.json()["error"]


def test_put_request_size_limits_and_switches_change_them_from_another_process(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("evals", "")
    reply = control(empty_sandbox, "PUT", "request_size_limits", json={"route": "dataset_insert", "bytes": 100})
    assert reply.json()["request_size_limits"]["dataset_insert"] == 100
    assert control(empty_sandbox, "PUT", "switches", json={"size_limit_status": 400}).json()["size_limit_status"] == 400
    assert insert(empty_sandbox, dataset["id"], 200).status_code == 400
    control(empty_sandbox, "PUT", "request_size_limits", json={"route": "dataset_insert", "bytes": None})
    assert insert(empty_sandbox, dataset["id"], 200).status_code == 200


def test_put_switches_turns_the_cursor_on_last_page_off(empty_sandbox):
    reply = control(empty_sandbox, "PUT", "switches", json={"btql_cursor_on_last_page": False})
    assert reply.json()["btql_cursor_on_last_page"] is False and empty_sandbox.btql_cursor_on_last_page is False
