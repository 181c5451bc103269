"""Fault injection and the /_sandbox/ control API, seen from a client over real HTTP."""

import http.client
import json
import socket
import time

import anthropic
import pytest
import requests

from braintrust_ops_sandbox import ANTHROPIC_KEY, BRAINTRUST_KEY, PROJECT_ID

AUTH = {"Authorization": f"Bearer {BRAINTRUST_KEY}"}
BTQL = {"query": f"SELECT * FROM project_logs('{PROJECT_ID}') WHERE created >= '2026-01-01T00:00:00.000000Z'"}


def tags(sandbox) -> requests.Response:
    return requests.get(f"{sandbox.url}/v1/project_tag", headers=AUTH, timeout=5)


def statuses(sandbox, count: int) -> list[int]:
    return [tags(sandbox).status_code for _ in range(count)]


def control(sandbox, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox/{path}", timeout=5, **kwargs)


def ask_claude(sandbox):
    return anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=sandbox.url, max_retries=0).messages.create(
        model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "Hi"}]
    )


def test_a_429_status_fault_answers_429_with_retry_after_once(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "status", status=429, retry_after=2)
    faulted = tags(empty_sandbox)
    assert (faulted.status_code, faulted.headers["Retry-After"]) == (429, "2")
    assert tags(empty_sandbox).json() == {"objects": []}


def test_a_529_fault_on_messages_answers_an_overloaded_error_body(empty_sandbox):
    empty_sandbox.faults.add("messages", "status", status=529)
    # anthropic.OverloadedError from SDK 1.0 on; 0.x exports only its base, APIStatusError.
    with pytest.raises(anthropic.APIStatusError) as raised:
        ask_claude(empty_sandbox)
    assert raised.value.status_code == 529
    assert raised.value.response.json()["error"]["type"] == "overloaded_error"


def test_a_fault_with_times_2_hits_two_requests_then_the_route_answers_normally(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "status", status=503, times=2)
    assert statuses(empty_sandbox, 3) == [503, 503, 200]


def test_a_fault_with_times_none_hits_every_request_until_cleared(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "status", status=500, times=None)
    assert statuses(empty_sandbox, 4) == [500] * 4
    empty_sandbox.faults.clear()
    assert statuses(empty_sandbox, 1) == [200]


def test_faults_for_one_route_play_in_the_order_added_and_leave_other_routes_alone(empty_sandbox):
    empty_sandbox.faults.add("dataset_list", "status", status=500)
    for status in (429, 503, 502):
        empty_sandbox.faults.add("project_tag", "status", status=status)
    assert statuses(empty_sandbox, 4) == [429, 503, 502, 200]
    assert len(empty_sandbox.faults.list()) == 1


def test_a_drop_fault_closes_the_connection_without_a_reply(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "drop")
    with pytest.raises(requests.ConnectionError):
        tags(empty_sandbox)


def test_an_invalid_json_fault_answers_200_with_a_body_that_does_not_parse(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "invalid_json")
    reply = tags(empty_sandbox)
    assert reply.status_code == 200
    with pytest.raises(ValueError):
        json.loads(reply.text)


def test_a_proxy_page_fault_answers_200_with_an_html_page(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "proxy_page")
    reply = tags(empty_sandbox)
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/html")
    assert reply.text.startswith("<html>")


def test_a_not_utf8_fault_answers_200_json_whose_bytes_do_not_decode(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "not_utf8")
    reply = tags(empty_sandbox)
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "application/json"
    with pytest.raises(UnicodeDecodeError):
        json.loads(reply.content)


def test_a_redirect_fault_sends_the_client_back_to_the_same_path_where_the_next_rule_meets_it(empty_sandbox):
    empty_sandbox.faults.add("btql", "redirect", times=2)
    empty_sandbox.faults.add("btql", "status", status=503)
    reply = requests.post(f"{empty_sandbox.url}/btql?x=1", headers=AUTH, json=BTQL, timeout=5)
    assert [(hop.status_code, hop.headers["Location"]) for hop in reply.history] == [(307, "/btql?x=1")] * 2
    assert reply.status_code == 503 and empty_sandbox.count("btql") == 3


def test_a_reply_fault_answers_200_with_its_json_body_whatever_its_shape(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "reply", body={"objects": None, "extra": [1, "two"]})
    empty_sandbox.faults.add("project_tag", "reply", body="a string")
    first, second = tags(empty_sandbox), tags(empty_sandbox)
    assert (first.status_code, first.headers["Content-Type"]) == (200, "application/json")
    assert (first.json(), second.json()) == ({"objects": None, "extra": [1, "two"]}, "a string")
    assert tags(empty_sandbox).json() == {"objects": []}


def test_a_redirect_fault_with_a_location_sends_the_client_there(empty_sandbox):
    empty_sandbox.faults.add("btql", "redirect", status=302, location="http://127.0.0.2:9/portal?next=1")
    reply = requests.post(f"{empty_sandbox.url}/btql", headers=AUTH, json=BTQL, timeout=5, allow_redirects=False)
    assert (reply.status_code, reply.headers["Location"]) == (302, "http://127.0.0.2:9/portal?next=1")


@pytest.mark.parametrize("status", [200, 304, 500])
def test_a_redirect_fault_takes_only_a_redirect_status(empty_sandbox, status):
    with pytest.raises(ValueError, match="a redirect's status"):
        empty_sandbox.faults.add("btql", "redirect", status=status)


def test_a_latency_fault_delays_the_reply_by_at_least_its_delay(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "latency", delay=0.5)
    started = time.monotonic()
    assert tags(empty_sandbox).json() == {"objects": []}
    assert time.monotonic() - started >= 0.5


@pytest.mark.parametrize(
    "route, method, path, key",
    [("project_tag", "GET", "/v1/project_tag", "objects"), ("btql", "POST", "/btql", "data")],
)
def test_a_status_200_fault_answers_json_lacking_the_list_the_client_needs(empty_sandbox, route, method, path, key):
    empty_sandbox.faults.add(route, "status", status=200)
    reply = requests.request(method, empty_sandbox.url + path, headers=AUTH, json=BTQL, timeout=5)
    assert reply.status_code == 200 and key not in reply.json()


def test_count_includes_faulted_and_dropped_requests(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "status", status=500)
    empty_sandbox.faults.add("project_tag", "drop")
    assert statuses(empty_sandbox, 1) == [500]
    with pytest.raises(requests.ConnectionError):
        tags(empty_sandbox)
    statuses(empty_sandbox, 1)
    assert (empty_sandbox.count("project_tag"), empty_sandbox.count("btql")) == (3, 0)


def test_post_faults_adds_a_rule_that_the_next_request_meets(empty_sandbox):
    added = control(empty_sandbox, "POST", "faults", json={"route": "project_tag", "kind": "status", "status": 503})
    assert added.status_code == 201 and added.json()["status"] == 503
    assert [rule["route"] for rule in control(empty_sandbox, "GET", "faults").json()["faults"]] == ["project_tag"]
    assert statuses(empty_sandbox, 2) == [503, 200]


def test_delete_faults_clears_every_rule(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "status", times=None)
    empty_sandbox.faults.add("btql", "drop")
    assert control(empty_sandbox, "DELETE", "faults").json() == {"faults": []}
    assert empty_sandbox.faults.list() == [] and statuses(empty_sandbox, 1) == [200]


def test_get_requests_returns_the_count_per_route(empty_sandbox):
    statuses(empty_sandbox, 2)
    requests.post(f"{empty_sandbox.url}/btql", headers=AUTH, json=BTQL, timeout=5)
    assert control(empty_sandbox, "GET", "requests").json() == {"project_tag": 2, "btql": 1}


def test_put_claude_latency_delays_the_messages_reply(empty_sandbox):
    assert control(empty_sandbox, "PUT", "claude_latency", json={"seconds": 0.4}).json() == {"seconds": 0.4}
    started = time.monotonic()
    ask_claude(empty_sandbox)
    assert time.monotonic() - started >= 0.4


def test_get_dataset_rows_returns_the_rows_insert_stored(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("evals", "")
    events = {"events": [{"id": "r1", "input": "q", "expected": "a"}]}
    requests.post(f"{empty_sandbox.url}/v1/dataset/{dataset['id']}/insert", headers=AUTH, json=events, timeout=5)
    rows = control(empty_sandbox, "GET", f"datasets/{dataset['id']}/rows").json()["rows"]
    assert [(row["id"], row["input"], row["expected"]) for row in rows] == [("r1", "q", "a")]


@pytest.mark.parametrize(
    "route, method, path, body",
    [
        ("project_tag", "GET", "/v1/project_tag", None),
        ("dataset_list", "GET", "/v1/dataset", None),
        ("btql", "POST", "/btql", BTQL),
        ("project", "GET", f"/v1/project/{PROJECT_ID}", None),
    ],
)
def test_a_partial_fault_announces_the_full_body_sends_half_and_closes(sandbox, route, method, path, body):
    whole = requests.request(method, sandbox.url + path, headers=AUTH, json=body, timeout=5)
    sandbox.faults.add(route, "partial")
    # Read with the standard library, which holds a reply to its Content-Length whatever the urllib3: 2.x
    # does too, 1.26 hands back the short body (the app checks it itself: clients/http.py, _check_whole_body).
    host, port = sandbox.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request(method, path, body=json.dumps(body) if body else None, headers=AUTH)
    reply = connection.getresponse()
    with pytest.raises(http.client.IncompleteRead) as raised:
        reply.read()
    connection.close()
    assert int(reply.headers["Content-Length"]) == len(whole.content)
    assert 0 < len(raised.value.partial) < len(whole.content) and whole.content.startswith(raised.value.partial)
    # The next request, on a new connection, is whole again.
    assert requests.request(method, sandbox.url + path, headers=AUTH, json=body, timeout=5).content == whole.content


def test_a_partial_fault_sends_exactly_the_first_half_of_the_real_reply(sandbox):
    whole = tags(sandbox).content
    sandbox.faults.add("project_tag", "partial")
    host, port = sandbox.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        request = f"GET /v1/project_tag HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH['Authorization']}\r\n\r\n"
        connection.sendall(request.encode())
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, cut = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and f"Content-Length: {len(whole)}".encode() in head
    assert cut == whole[: len(whole) // 2]


def test_a_partial_fault_on_messages_cuts_claudes_reply_so_the_sdk_raises(empty_sandbox):
    empty_sandbox.faults.add("messages", "partial")
    with pytest.raises(anthropic.APIConnectionError):
        ask_claude(empty_sandbox)


def test_an_echo_credentials_fault_quotes_the_request_headers_in_an_error_of_the_route_s_shape(empty_sandbox):
    empty_sandbox.faults.add("project_tag", "echo_credentials", status=400)
    empty_sandbox.faults.add("messages", "echo_credentials", status=400)
    echoed = tags(empty_sandbox)
    assert echoed.status_code == 400
    assert f"Authorization: 'Bearer {BRAINTRUST_KEY}'" in echoed.json()["error"]
    with pytest.raises(anthropic.BadRequestError) as raised:
        ask_claude(empty_sandbox)
    assert ANTHROPIC_KEY in raised.value.body["error"]["message"]
    assert tags(empty_sandbox).status_code == 200  # once, like any fault
