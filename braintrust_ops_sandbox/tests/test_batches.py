"""The Message Batches API, driven through the official anthropic SDK (and ``requests`` where the SDK
stops before the wire)."""

import json
import time
from datetime import timedelta

import anthropic
import freezegun
import pytest
import requests

from braintrust_ops.clients.claude import SDK_HTTP
from braintrust_ops_sandbox import ANTHROPIC_KEY
from braintrust_ops_sandbox.batches import MAX_BATCH_BYTES, MAX_REQUESTS
from braintrust_ops_sandbox.tests.test_fake_claude import MODEL, TAGS, tag_tool

KEY_HEADERS = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
TEXTS = {
    "shabbat": "Is it permitted to turn on a light on Shabbat?",
    "rashi": "Please translate Rashi on Genesis 1:1.",
    "weather": "What's the WEATHER in Tel Aviv?",
    "maimonides": "Who was Maimonides?",
}


def client(sandbox, key: str = ANTHROPIC_KEY, **options) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=sandbox.url, **{"max_retries": 0, **options})


def params(text: str, **overrides) -> dict:
    return {
        "model": MODEL,
        "max_tokens": 256,
        "system": "Tag this chatbot turn.",
        "tools": [tag_tool(TAGS)],
        "tool_choice": {"type": "tool", "name": "record_tags"},
        "messages": [{"role": "user", "content": text}],
        **overrides,
    }


def batch_of(texts: dict[str, str]) -> list[dict]:
    return [{"custom_id": custom_id, "params": params(text)} for custom_id, text in texts.items()]


def create(sandbox, texts: dict[str, str] = TEXTS):
    return client(sandbox).messages.batches.create(requests=batch_of(texts))


def ended(sandbox, batch_id: str):
    batch = client(sandbox).messages.batches.retrieve(batch_id)
    assert batch.processing_status == "ended"
    return batch


def result_lines(sandbox, batch_id: str) -> list:
    # The client is held while the stream is read: the SDK client's __del__ closes its connections, and a
    # temporary one may be collected mid-stream (a "Bad file descriptor" on the next read).
    api = client(sandbox)
    return list(api.messages.batches.results(batch_id))


def results(sandbox, batch_id: str) -> dict:
    return {line.custom_id: line.result for line in result_lines(sandbox, batch_id)}


def without_ids(message: dict) -> dict:
    """A message minus what differs between any two replies: its id and its tool_use blocks' ids."""
    content = [{key: value for key, value in block.items() if key != "id"} for block in message["content"]]
    return {**{key: value for key, value in message.items() if key != "id"}, "content": content}


# --- life of a batch --------------------------------------------------------------------------------


def test_a_new_batch_is_in_progress_with_every_request_processing_until_processing_seconds_pass(empty_sandbox):
    empty_sandbox.batches.processing_seconds = 0.3
    batch = create(empty_sandbox)
    assert batch.id.startswith("msgbatch_") and batch.type == "message_batch"
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.model_dump() == {
        "processing": 4,
        "succeeded": 0,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert (batch.ended_at, batch.results_url, batch.cancel_initiated_at, batch.archived_at) == (None,) * 4
    assert batch.expires_at - batch.created_at == timedelta(hours=24)
    assert client(empty_sandbox).messages.batches.retrieve(batch.id).processing_status == "in_progress"

    time.sleep(0.35)
    done = ended(empty_sandbox, batch.id)
    assert done.request_counts.model_dump() == {
        "processing": 0,
        "succeeded": 4,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert done.ended_at >= done.created_at
    assert done.results_url == f"{empty_sandbox.url}/v1/messages/batches/{batch.id}/results"


def test_the_create_answer_is_in_progress_even_when_processing_takes_no_time(empty_sandbox):
    assert empty_sandbox.batches.processing_seconds == 0.0
    batch = create(empty_sandbox)
    assert batch.processing_status == "in_progress"
    assert ended(empty_sandbox, batch.id).request_counts.succeeded == len(TEXTS)


def test_succeeded_results_carry_the_message_the_messages_route_answers_for_the_same_params(empty_sandbox):
    batch = create(empty_sandbox)
    by_id = results(empty_sandbox, ended(empty_sandbox, batch.id).id)
    assert set(by_id) == set(TEXTS)
    for custom_id, text in TEXTS.items():
        interactive = client(empty_sandbox).messages.create(**params(text))
        assert by_id[custom_id].type == "succeeded"
        assert without_ids(by_id[custom_id].message.model_dump()) == without_ids(interactive.model_dump())
    assert by_id["rashi"].message.content[0].input == {"tags": ["translation", "sources"]}


def test_scripted_replies_answer_batched_requests_in_request_order_as_they_answer_the_messages_route(empty_sandbox):
    empty_sandbox.claude_replies.push({"tool_input": {"tags": ["not-in-the-enum"]}})
    empty_sandbox.claude_replies.push({"text": "No tool.", "stop_reason": "max_tokens"})
    batch = create(empty_sandbox)
    by_id = results(empty_sandbox, ended(empty_sandbox, batch.id).id)
    assert by_id["shabbat"].message.content[0].input == {"tags": ["not-in-the-enum"]}
    assert (by_id["rashi"].message.content[0].text, by_id["rashi"].message.stop_reason) == ("No tool.", "max_tokens")
    assert by_id["weather"].message.content[0].input == {"tags": ["off-topic"]}
    assert len(empty_sandbox.claude_replies) == 0


def test_results_come_out_of_request_order_and_in_the_same_order_on_every_read(empty_sandbox):
    texts = {f"log-{number:02d}": f"Shabbat question {number}" for number in range(12)}
    batch_id = create(empty_sandbox, texts).id
    ended(empty_sandbox, batch_id)
    first = [line.custom_id for line in result_lines(empty_sandbox, batch_id)]
    second = [line.custom_id for line in result_lines(empty_sandbox, batch_id)]
    assert sorted(first) == list(texts)
    assert first != list(texts)
    assert first == second


def test_even_two_results_do_not_come_in_request_order(empty_sandbox):
    batch_id = create(empty_sandbox, {"a": "Shabbat", "b": "weather"}).id
    ended(empty_sandbox, batch_id)
    assert [line.custom_id for line in result_lines(empty_sandbox, batch_id)] == ["b", "a"]


def test_results_are_streamed_as_chunked_jsonl_one_result_a_line(empty_sandbox):
    batch = create(empty_sandbox)
    results_url = ended(empty_sandbox, batch.id).results_url
    reply = requests.get(results_url, headers=KEY_HEADERS, timeout=5, stream=True)
    assert reply.status_code == 200
    assert reply.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in reply.headers
    lines = [line for line in reply.iter_lines() if line]
    assert len(lines) == len(TEXTS)
    assert all(line.startswith(b'{"custom_id": ') for line in lines)


def test_results_before_the_end_are_refused_with_400_and_the_sdk_stops_at_the_missing_results_url(empty_sandbox):
    empty_sandbox.batches.processing_seconds = 60
    batch = create(empty_sandbox)
    reply = requests.get(f"{empty_sandbox.url}/v1/messages/batches/{batch.id}/results", headers=KEY_HEADERS, timeout=5)
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert "in_progress" in reply.json()["error"]["message"]
    with pytest.raises(anthropic.AnthropicError, match="No `results_url`"):
        client(empty_sandbox).messages.batches.results(batch.id)


# --- outcomes ---------------------------------------------------------------------------------------


def test_a_scripted_errored_outcome_ends_its_request_errored_and_is_used_once(empty_sandbox):
    outcome = {
        "type": "errored",
        "error": {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}},
    }
    empty_sandbox.batches.outcomes["rashi"] = outcome
    batch = create(empty_sandbox)
    assert ended(empty_sandbox, batch.id).request_counts.errored == 1
    by_id = results(empty_sandbox, batch.id)
    assert by_id["rashi"].model_dump(exclude_none=True) == outcome
    assert by_id["shabbat"].type == "succeeded"
    assert "rashi" not in empty_sandbox.batches.outcomes

    again = create(empty_sandbox, {"rashi": TEXTS["rashi"]})
    assert results(empty_sandbox, ended(empty_sandbox, again.id).id)["rashi"].type == "succeeded"


@pytest.mark.parametrize(
    "outcome",
    [
        {"type": "succeeded"},
        {"type": "errored", "error": {"type": "invalid_request_error", "message": "flat, not the error shape"}},
        {"type": "errored", "error": {"type": "error", "error": {"type": "api_error"}}},
        {"type": "expired", "reason": "extra"},
        "expired",
    ],
)
def test_an_outcome_not_in_the_results_files_shape_is_refused_when_scripted(empty_sandbox, outcome):
    with pytest.raises(ValueError):
        empty_sandbox.batches.outcomes["log-1"] = outcome
    assert "log-1" not in empty_sandbox.batches.outcomes


def test_expire_ends_a_processing_batch_with_its_requests_expired(empty_sandbox):
    empty_sandbox.batches.processing_seconds = 60
    batch = create(empty_sandbox)
    expired = empty_sandbox.batches.expire(batch.id)
    assert expired["processing_status"] == "ended"
    counts = ended(empty_sandbox, batch.id).request_counts
    assert (counts.expired, counts.succeeded, counts.processing) == (len(TEXTS), 0, 0)
    assert {result.type for result in results(empty_sandbox, batch.id).values()} == {"expired"}


def test_expire_refuses_a_batch_that_has_already_ended(empty_sandbox):
    batch = create(empty_sandbox)
    ended(empty_sandbox, batch.id)
    with pytest.raises(ValueError, match="already ended"):
        empty_sandbox.batches.expire(batch.id)


def test_cancel_answers_canceling_then_the_batch_ends_with_its_requests_canceled(empty_sandbox):
    empty_sandbox.batches.processing_seconds = 60
    batch = create(empty_sandbox)
    canceling = client(empty_sandbox).messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    assert canceling.request_counts.processing == len(TEXTS)
    done = ended(empty_sandbox, batch.id)
    assert (done.request_counts.canceled, done.request_counts.succeeded) == (len(TEXTS), 0)
    assert {result.type for result in results(empty_sandbox, batch.id).values()} == {"canceled"}


def test_a_scripted_outcome_holds_whatever_ends_the_batch(empty_sandbox):
    empty_sandbox.batches.processing_seconds = 60
    empty_sandbox.batches.outcomes["weather"] = {"type": "expired"}
    batch = create(empty_sandbox)
    client(empty_sandbox).messages.batches.cancel(batch.id)
    counts = ended(empty_sandbox, batch.id).request_counts
    assert (counts.canceled, counts.expired) == (len(TEXTS) - 1, 1)


def test_cancel_of_a_batch_that_has_ended_is_refused_with_400(empty_sandbox):
    batch = create(empty_sandbox)
    ended(empty_sandbox, batch.id)
    with pytest.raises(anthropic.BadRequestError, match="has ended"):
        client(empty_sandbox).messages.batches.cancel(batch.id)


# --- creation: what is refused at once, and what comes back errored ---------------------------------


@pytest.mark.parametrize("custom_id", ["", "x" * 65, "log 1", "log.1", "שבת", 7, None])
def test_a_custom_id_outside_the_documented_pattern_is_refused_with_400(empty_sandbox, custom_id):
    requests_ = [{"custom_id": "fine-one", "params": params("Hi")}, {"custom_id": custom_id, "params": params("Hi")}]
    with pytest.raises(anthropic.BadRequestError, match=r"requests\.1\.custom_id") as raised:
        client(empty_sandbox).messages.batches.create(requests=requests_)
    assert raised.value.body["error"]["type"] == "invalid_request_error"
    assert empty_sandbox.batches.all() == []


def test_a_custom_id_of_64_allowed_characters_is_accepted(empty_sandbox):
    custom_id = "a-Z_9" * 12 + "abcd"
    batch = client(empty_sandbox).messages.batches.create(requests=[{"custom_id": custom_id, "params": params("Hi")}])
    assert batch.request_counts.processing == 1


def test_duplicate_custom_ids_are_refused_with_400_naming_the_id(empty_sandbox):
    requests_ = batch_of({"log-1": "Shabbat", "log-2": "weather"}) + batch_of({"log-1": "Rashi"})
    with pytest.raises(anthropic.BadRequestError, match=r"requests\.2\.custom_id: 'log-1' is already used"):
        client(empty_sandbox).messages.batches.create(requests=requests_)


@pytest.mark.parametrize(
    "body, where",
    [
        ({"requests": []}, "at least 1 item"),
        ({}, "requests: Field required"),
        ({"requests": [{"custom_id": "log-1"}]}, "requests.0.params"),
        ({"requests": [{"custom_id": "log-1", "params": "Hi"}]}, "requests.0.params"),
        ({"requests": [{"custom_id": "log-1", "params": {}, "priority": 1}]}, "requests.0.priority"),
    ],
)
def test_a_batch_envelope_the_api_schema_refuses_gets_400_naming_the_field(empty_sandbox, body, where):
    reply = requests.post(f"{empty_sandbox.url}/v1/messages/batches", headers=KEY_HEADERS, json=body, timeout=5)
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert where in reply.json()["error"]["message"]


def test_more_than_100000_requests_are_refused_with_400(empty_sandbox):
    assert MAX_REQUESTS == 100_000
    body = {"requests": [{"custom_id": f"r{number}", "params": {}} for number in range(MAX_REQUESTS + 1)]}
    reply = requests.post(f"{empty_sandbox.url}/v1/messages/batches", headers=KEY_HEADERS, json=body, timeout=30)
    assert reply.status_code == 400
    assert "at most 100000 items" in reply.json()["error"]["message"]


def test_a_batch_over_the_size_limit_gets_413_request_too_large(empty_sandbox):
    assert empty_sandbox.request_size_limits["batches_create"] == MAX_BATCH_BYTES == 256 * 1024 * 1024
    empty_sandbox.request_size_limits["batches_create"] = 500
    with pytest.raises(anthropic.APIStatusError) as raised:
        create(empty_sandbox)
    assert raised.value.status_code == 413
    assert raised.value.body["error"]["type"] == "request_too_large"


@pytest.mark.parametrize(
    "bad_params, message",
    [
        ({"max_tokens": None}, "missing required fields: max_tokens"),
        ({"tools": [{"name": "record tags", "input_schema": {"type": "object"}}]}, "tools.0.name"),
        ({"tool_choice": {"type": "tool", "name": "elsewhere"}}, "tool_choice.name"),
        ({"max_tokens": 0}, "max_tokens of at least 1"),
        ({"stream": True}, "stream"),
    ],
)
def test_invalid_params_are_accepted_at_creation_and_come_back_errored_as_the_docs_say(
    empty_sandbox, bad_params, message
):
    bad = {key: value for key, value in params("Shabbat", **bad_params).items() if value is not None}
    batch = client(empty_sandbox).messages.batches.create(
        requests=[{"custom_id": "bad", "params": bad}, {"custom_id": "good", "params": params("Shabbat")}]
    )
    assert batch.processing_status == "in_progress"
    assert ended(empty_sandbox, batch.id).request_counts.errored == 1
    by_id = results(empty_sandbox, batch.id)
    assert by_id["good"].type == "succeeded"
    assert by_id["bad"].type == "errored"
    assert by_id["bad"].error.error.type == "invalid_request_error"
    assert message in by_id["bad"].error.error.message


def test_an_errored_request_gets_the_message_the_messages_route_refuses_the_same_params_with(empty_sandbox):
    bad = params("Shabbat", tool_choice={"type": "tool", "name": "elsewhere"})
    with pytest.raises(anthropic.BadRequestError) as refused:
        client(empty_sandbox).messages.create(**bad)
    batch = client(empty_sandbox).messages.batches.create(requests=[{"custom_id": "bad", "params": bad}])
    ended(empty_sandbox, batch.id)
    assert results(empty_sandbox, batch.id)["bad"].error.error.message == refused.value.body["error"]["message"]


# --- retrieve, list, 404 ----------------------------------------------------------------------------


def test_an_unknown_batch_id_is_404_not_found_on_retrieve_cancel_and_results(empty_sandbox):
    with pytest.raises(anthropic.NotFoundError) as raised:
        client(empty_sandbox).messages.batches.retrieve("msgbatch_nope")
    assert raised.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):
        client(empty_sandbox).messages.batches.cancel("msgbatch_nope")
    reply = requests.get(
        f"{empty_sandbox.url}/v1/messages/batches/msgbatch_nope/results", headers=KEY_HEADERS, timeout=5
    )
    assert (reply.status_code, reply.json()["error"]["type"]) == (404, "not_found_error")


def test_list_gives_the_most_recently_created_first_and_the_sdk_pages_through_all_with_after_id(empty_sandbox):
    created = [create(empty_sandbox, {"log-1": "Shabbat"}).id for _ in range(5)]
    listed = client(empty_sandbox).messages.batches.list(limit=2)
    assert [batch.id for batch in listed.data] == created[::-1][:2]
    assert (listed.has_more, listed.first_id, listed.last_id) == (True, created[4], created[3])
    assert [batch.id for batch in listed] == created[::-1]
    assert empty_sandbox.count("batches_list") == 3


def test_list_with_before_id_gives_the_newer_batches_next_to_it(empty_sandbox):
    created = [create(empty_sandbox, {"log-1": "Shabbat"}).id for _ in range(5)]
    page = client(empty_sandbox).messages.batches.list(before_id=created[1], limit=2)
    assert [batch.id for batch in page.data] == [created[3], created[2]]
    assert page.has_more is True
    last = client(empty_sandbox).messages.batches.list(before_id=created[3], limit=2)
    assert ([batch.id for batch in last.data], last.has_more) == ([created[4]], False)


def test_list_limit_defaults_to_20_and_must_be_from_1_to_1000(empty_sandbox):
    for _ in range(21):
        create(empty_sandbox, {"log-1": "Shabbat"})
    first_page = client(empty_sandbox).messages.batches.list()
    assert (len(first_page.data), first_page.has_more) == (20, True)
    assert len(client(empty_sandbox).messages.batches.list(limit=1000).data) == 21
    for limit in (0, 1001):
        with pytest.raises(anthropic.BadRequestError, match="limit"):
            client(empty_sandbox).messages.batches.list(limit=limit)


def test_an_empty_list_has_no_first_or_last_id(empty_sandbox):
    page = client(empty_sandbox).messages.batches.list()
    assert (page.data, page.has_more, page.first_id, page.last_id) == ([], False, None, None)


# --- auth, faults, rate limits, counters ------------------------------------------------------------


def test_a_wrong_key_gets_401_authentication_error_on_every_batches_route(empty_sandbox):
    batch_id = create(empty_sandbox).id
    ended(empty_sandbox, batch_id)
    wrong = client(empty_sandbox, key="sk-wrong-key-for-tests-000000").messages.batches
    for call in (
        lambda: wrong.create(requests=batch_of(TEXTS)),
        lambda: wrong.retrieve(batch_id),
        lambda: wrong.list(),
        lambda: wrong.cancel(batch_id),
    ):
        with pytest.raises(anthropic.AuthenticationError):
            call()
    reply = requests.get(f"{empty_sandbox.url}/v1/messages/batches/{batch_id}/results", timeout=5)
    assert (reply.status_code, reply.json()["error"]["type"]) == (401, "authentication_error")
    bearer = {"Authorization": f"Bearer {ANTHROPIC_KEY}"}
    assert requests.get(f"{empty_sandbox.url}/v1/messages/batches", headers=bearer, timeout=5).status_code == 200


def test_a_529_fault_on_create_answers_overloaded_and_the_sdk_retries_it(empty_sandbox):
    empty_sandbox.faults.add("batches_create", "status", status=529)
    # anthropic.OverloadedError from SDK 1.0 on; 0.x exports only its base, APIStatusError.
    with pytest.raises(anthropic.APIStatusError) as raised:
        create(empty_sandbox)
    assert raised.value.status_code == 529
    empty_sandbox.faults.add("batches_create", "status", status=529, retry_after=0)
    batch = client(empty_sandbox, max_retries=1).messages.batches.create(requests=batch_of(TEXTS))
    assert batch.processing_status == "in_progress"
    assert empty_sandbox.count("batches_create") == 3
    assert len(empty_sandbox.batches.all()) == 1


def test_a_dropped_connection_on_retrieve_is_a_connection_error(empty_sandbox):
    batch_id = create(empty_sandbox).id
    empty_sandbox.faults.add("batches_retrieve", "drop")
    with pytest.raises(anthropic.APIConnectionError):
        client(empty_sandbox).messages.batches.retrieve(batch_id)


def test_latency_on_retrieve_makes_a_short_timeout_expire(empty_sandbox):
    batch_id = create(empty_sandbox).id
    empty_sandbox.faults.add("batches_retrieve", "latency", delay=0.5)
    with pytest.raises(anthropic.APITimeoutError):
        client(empty_sandbox, timeout=0.1).messages.batches.retrieve(batch_id)


def test_invalid_json_on_list_fails_to_parse(empty_sandbox):
    empty_sandbox.faults.add("batches_list", "invalid_json")
    with pytest.raises(json.JSONDecodeError):
        client(empty_sandbox).messages.batches.list()


def test_a_partial_results_stream_breaks_off_mid_way(empty_sandbox):
    batch_id = create(empty_sandbox).id
    ended(empty_sandbox, batch_id)
    empty_sandbox.faults.add("batches_results", "partial")
    got, api = [], client(empty_sandbox)
    with pytest.raises((SDK_HTTP.HTTPError, ValueError)):
        for line in api.messages.batches.results(batch_id):
            got.append(line.custom_id)
    assert len(got) < len(TEXTS)
    assert len(results(empty_sandbox, batch_id)) == len(TEXTS)


def test_a_rate_limit_on_retrieve_answers_429_with_retry_after_and_counts_it(empty_sandbox):
    batch_id = create(empty_sandbox).id
    empty_sandbox.rate_limits.set("batches_retrieve", requests=1, per_seconds=60)
    client(empty_sandbox).messages.batches.retrieve(batch_id)
    with pytest.raises(anthropic.RateLimitError) as raised:
        client(empty_sandbox).messages.batches.retrieve(batch_id)
    assert raised.value.body["error"]["type"] == "rate_limit_error"
    assert int(raised.value.response.headers["retry-after"]) >= 1
    assert (empty_sandbox.count("batches_retrieve"), empty_sandbox.rate_limited("batches_retrieve")) == (2, 1)


def test_batch_requests_are_not_charged_to_claudes_per_minute_limits_nor_stopped_by_an_outage(empty_sandbox):
    empty_sandbox.claude_limits.set(requests_per_minute=1)
    empty_sandbox.claude_outage("overloaded")
    batch_id = create(empty_sandbox).id
    assert ended(empty_sandbox, batch_id).request_counts.succeeded == len(TEXTS)
    assert empty_sandbox.claude_limits.as_dict()["accepted"] == 0


# --- the control surfaces ---------------------------------------------------------------------------


def test_all_lists_every_batch_with_its_custom_ids_requests_and_results(empty_sandbox):
    empty_sandbox.batches.processing_seconds = 60
    first = create(empty_sandbox, {"log-1": "Shabbat", "log-2": "weather"}).id
    [described] = empty_sandbox.batches.all()
    assert (described["id"], described["custom_ids"], described["results"]) == (first, ["log-1", "log-2"], None)
    assert described["requests"][0]["params"]["messages"][0]["content"] == "Shabbat"
    empty_sandbox.batches.expire(first)
    assert empty_sandbox.batches.all()[0]["results"] == {"log-1": {"type": "expired"}, "log-2": {"type": "expired"}}


def test_processing_seconds_is_a_non_negative_number(empty_sandbox):
    for wrong in (-1, "0.3", True, float("nan")):
        with pytest.raises(ValueError):
            empty_sandbox.batches.processing_seconds = wrong
    assert empty_sandbox.batches.processing_seconds == 0.0


def test_the_http_control_api_sets_processing_time_scripts_outcomes_expires_and_lists_batches(empty_sandbox):
    control = f"{empty_sandbox.url}/_sandbox/batches"
    assert requests.put(control, json={"processing_seconds": 60}, timeout=5).json()["processing_seconds"] == 60
    outcome = {"type": "errored", "error": {"type": "error", "error": {"type": "overloaded_error", "message": "x"}}}
    scripted = requests.post(f"{control}/outcomes", json={"log-2": outcome}, timeout=5)
    assert (scripted.status_code, scripted.json()["outcomes"]) == (201, {"log-2": outcome})
    assert requests.post(f"{control}/outcomes", json={"log-3": {"type": "nope"}}, timeout=5).status_code == 400

    batch_id = create(empty_sandbox, {"log-1": "Shabbat", "log-2": "weather"}).id
    expired = requests.post(f"{control}/{batch_id}/expire", timeout=5)
    assert (expired.status_code, expired.json()["request_counts"]["expired"]) == (200, 1)
    assert expired.json()["request_counts"]["errored"] == 1
    assert requests.post(f"{control}/{batch_id}/expire", timeout=5).status_code == 400
    assert requests.post(f"{control}/msgbatch_nope/expire", timeout=5).status_code == 404

    listed = requests.get(control, timeout=5).json()
    assert [batch["custom_ids"] for batch in listed["batches"]] == [["log-1", "log-2"]]
    assert listed["outcomes"] == {}
    assert requests.get(f"{empty_sandbox.url}/_sandbox/requests", timeout=5).json()["batches_create"] == 1


def test_a_batch_still_processing_24_hours_after_creation_ends_with_its_requests_expired(empty_sandbox):
    empty_sandbox.batches.processing_seconds = 3600
    batch = create(empty_sandbox)
    with freezegun.freeze_time(batch.expires_at - timedelta(seconds=1)):
        assert client(empty_sandbox).messages.batches.retrieve(batch.id).processing_status == "in_progress"
    with freezegun.freeze_time(batch.expires_at):
        counts = ended(empty_sandbox, batch.id).request_counts
    assert (counts.expired, counts.processing) == (len(TEXTS), 0)


def test_end_processing_ends_an_in_progress_batch_now_with_its_results_worked_out_as_usual(empty_sandbox):
    empty_sandbox.batches.processing_seconds = 3600
    empty_sandbox.batches.outcomes["weather"] = {"type": "expired"}
    batch = create(empty_sandbox)
    assert empty_sandbox.batches.end_processing(batch.id)["processing_status"] == "ended"
    counts = ended(empty_sandbox, batch.id).request_counts
    assert (counts.succeeded, counts.expired) == (len(TEXTS) - 1, 1)
    with pytest.raises(ValueError, match="not in_progress"):
        empty_sandbox.batches.end_processing(batch.id)
    other = create(empty_sandbox).id
    reply = requests.post(f"{empty_sandbox.url}/_sandbox/batches/{other}/end_processing", timeout=5)
    assert (reply.status_code, reply.json()["request_counts"]["succeeded"]) == (200, len(TEXTS))


# --- time: expiry and archive -----------------------------------------------------------------------


def test_a_batch_backdated_past_24_hours_while_processing_ends_expired_at_its_expiry(empty_sandbox):
    empty_sandbox.batches.processing_seconds = 3600
    batch = create(empty_sandbox)
    backdated = empty_sandbox.batches.backdate(batch.id, 25 * 3600)
    assert (backdated["processing_status"], backdated["request_counts"]["expired"]) == ("ended", len(TEXTS))
    assert backdated["ended_at"] == backdated["expires_at"] and backdated["archived_at"] is None
    assert {result.type for result in results(empty_sandbox, batch.id).values()} == {"expired"}


def test_a_batch_is_archived_29_days_after_its_creation_and_its_results_answer_404(empty_sandbox):
    batch = create(empty_sandbox)
    ended(empty_sandbox, batch.id)
    empty_sandbox.batches.backdate(batch.id, timedelta(days=29).total_seconds() - 60)
    assert ended(empty_sandbox, batch.id).archived_at is None
    assert len(results(empty_sandbox, batch.id)) == len(TEXTS)

    empty_sandbox.batches.backdate(batch.id, 60)
    archived = ended(empty_sandbox, batch.id)
    assert archived.archived_at == archived.created_at + timedelta(days=29)
    assert archived.results_url is not None  # still viewable, as the docs say; its results are not
    with pytest.raises(anthropic.NotFoundError, match="archived"):
        result_lines(empty_sandbox, batch.id)


def test_backdate_through_the_control_api_takes_seconds_0_or_more_of_a_known_batch(empty_sandbox):
    batch = create(empty_sandbox)
    control = f"{empty_sandbox.url}/_sandbox/batches"
    moved = requests.post(f"{control}/{batch.id}/backdate", json={"seconds": 30 * 86400}, timeout=5)
    assert moved.status_code == 200 and moved.json()["archived_at"] is not None
    for wrong in (-1, "1", True):
        assert requests.post(f"{control}/{batch.id}/backdate", json={"seconds": wrong}, timeout=5).status_code == 400
    assert requests.post(f"{control}/msgbatch_nope/backdate", json={"seconds": 1}, timeout=5).status_code == 404
