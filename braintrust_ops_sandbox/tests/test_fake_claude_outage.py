"""An Anthropic outage in the sandbox: 529 overloaded, 500 api_error, or no answer at all, until it ends."""

import anthropic
import pytest
import requests

from braintrust_ops_sandbox import ANTHROPIC_KEY, BRAINTRUST_KEY

HELLO = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}


def ask(sandbox, max_retries: int = 0):
    claude = anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=sandbox.url, max_retries=max_retries)
    return claude.with_options(timeout=5).messages.create(**HELLO)


def control(sandbox, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox/{path}", timeout=5, **kwargs)


# A 529 is anthropic.OverloadedError from SDK 1.0 on; 0.x has that class only in anthropic._exceptions, so
# these tests name its base, APIStatusError, and check the status and the body the sandbox answers.
@pytest.mark.parametrize(
    "kind, error, status, error_type",
    [
        ("overloaded", anthropic.APIStatusError, 529, "overloaded_error"),
        ("server_error", anthropic.InternalServerError, 500, "api_error"),
    ],
)
def test_every_request_during_the_outage_gets_its_error_until_it_ends(empty_sandbox, kind, error, status, error_type):
    empty_sandbox.claude_outage(kind)
    for _ in range(3):
        with pytest.raises(error) as raised:
            ask(empty_sandbox)
        assert raised.value.status_code == status
        assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == error_type
    assert empty_sandbox.claude_outage_requests == 3
    empty_sandbox.claude_outage(None)
    assert ask(empty_sandbox).type == "message"
    assert empty_sandbox.claude_outage_requests == 3  # the ended outage's count stays readable


def test_an_unreachable_anthropic_closes_the_connection_without_an_answer(empty_sandbox):
    empty_sandbox.claude_outage("unreachable")
    with pytest.raises(anthropic.APIConnectionError):
        ask(empty_sandbox)
    assert empty_sandbox.claude_outage_requests == 1


def test_the_sdks_retries_all_meet_the_outage_and_are_counted(empty_sandbox):
    empty_sandbox.claude_outage("overloaded")
    with pytest.raises(anthropic.APIStatusError) as raised:
        ask(empty_sandbox, max_retries=2)
    assert raised.value.status_code == 529
    assert empty_sandbox.claude_outage_requests == 3 and empty_sandbox.count("messages") == 3


def test_a_new_outage_counts_from_zero(empty_sandbox):
    empty_sandbox.claude_outage("server_error")
    with pytest.raises(anthropic.InternalServerError):
        ask(empty_sandbox)
    empty_sandbox.claude_outage("unreachable")
    assert empty_sandbox.claude_outage_requests == 0


def test_braintrust_routes_answer_normally_during_a_claude_outage(empty_sandbox):
    empty_sandbox.claude_outage("unreachable")
    reply = requests.get(
        f"{empty_sandbox.url}/v1/project_tag", headers={"Authorization": f"Bearer {BRAINTRUST_KEY}"}, timeout=5
    )
    assert reply.json() == {"objects": []}


def test_put_and_get_claude_outage(empty_sandbox):
    assert control(empty_sandbox, "PUT", "claude_outage", json={"kind": "overloaded"}).json() == {
        "kind": "overloaded",
        "requests": 0,
    }
    with pytest.raises(anthropic.APIStatusError) as raised:
        ask(empty_sandbox)
    assert raised.value.status_code == 529
    assert control(empty_sandbox, "GET", "claude_outage").json() == {"kind": "overloaded", "requests": 1}
    assert control(empty_sandbox, "PUT", "claude_outage", json={"kind": None}).json()["kind"] is None
    assert ask(empty_sandbox).type == "message"


@pytest.mark.parametrize("body", [{"kind": "down"}, {}])
def test_an_unknown_outage_kind_gets_400(empty_sandbox, body):
    assert control(empty_sandbox, "PUT", "claude_outage", json=body).status_code == 400
    with pytest.raises(ValueError):
        empty_sandbox.claude_outage("down")
