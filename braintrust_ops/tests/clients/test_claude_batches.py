"""The Message Batches client against the sandbox, through the real SDK: what a broken results stream becomes."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from braintrust_ops.clients.claude import SDK_HTTP, LogRefused, tool_params
from braintrust_ops.clients.claude_batches import BatchClient, ResultsBrokeOff, ResultsNotFound
from braintrust_ops.exceptions import InvalidReply, PermanentServiceError, TransientServiceError
from braintrust_ops.taggable_tags import TaggableTag
from braintrust_ops.tagging_prompt import build_tool
from braintrust_ops_sandbox import ANTHROPIC_KEY

MODEL = "claude-haiku-4-5"
TOOL = build_tool([TaggableTag("halacha", "Questions of Jewish law")], strict=False)


def test_results_cut_off_mid_stream_break_off_caused_by_the_sdks_own_http_error_and_read_whole_again(empty_sandbox):
    """The SDK raises its HTTP library's error as it is while a stream is read: httpx's under anthropic 0.x,
    httpx2's under 1.x and later. Either way the results can be read again."""
    client = BatchClient(api_key=ANTHROPIC_KEY, base_url=empty_sandbox.url, model=MODEL, timeout=5, max_retries=0)
    params = tool_params(model=MODEL, max_tokens=100, system="Tag the log.", user_text="Shabbat?", tool=TOOL)
    batch = client.create([{"custom_id": f"log-{n}", "params": params} for n in range(4)])
    assert client.retrieve(batch.batch_id).ended
    empty_sandbox.faults.add("batches_results", "partial", times=1)
    with pytest.raises(ResultsBrokeOff, match=f"The results of batch {batch.batch_id} broke off") as raised:
        list(client.results(batch.batch_id, tool_name=TOOL["name"]))
    assert isinstance(raised.value.__cause__, SDK_HTTP.HTTPError)
    assert [outcome.kind for outcome in client.results(batch.batch_id, tool_name=TOOL["name"])] == ["succeeded"] * 4
    client.close()


def _requests(count: int) -> list[dict]:
    params = tool_params(model=MODEL, max_tokens=100, system="Tag the log.", user_text="Shabbat?", tool=TOOL)
    return [{"custom_id": f"log-{n}", "params": params} for n in range(count)]


@pytest.mark.parametrize("fault", [{"kind": "latency", "delay": 0.6}, {"kind": "partial"}])
def test_a_batch_create_whose_reply_is_lost_is_not_sent_again(empty_sandbox, fault):
    """The SDK sends no idempotency key: sending again would create and bill a second batch. The one batch
    Anthropic took is left for the next run to adopt."""
    client = BatchClient(api_key=ANTHROPIC_KEY, base_url=empty_sandbox.url, model=MODEL, timeout=0.3, max_retries=2)
    empty_sandbox.faults.add("batches_create", times=1, **fault)
    with pytest.raises(TransientServiceError):
        client.create(_requests(2))
    time.sleep(0.5)  # the slow create finishes on the server
    assert len(list(client.created_since(datetime(2000, 1, 1, tzinfo=UTC)))) == 1
    client.close()


@pytest.mark.parametrize("fault", [{"kind": "status", "status": 529}, {"kind": "status", "status": 429}])
def test_a_batch_create_anthropic_refused_with_a_retryable_status_is_sent_again(empty_sandbox, fault):
    client = BatchClient(api_key=ANTHROPIC_KEY, base_url=empty_sandbox.url, model=MODEL, timeout=5, max_retries=2)
    empty_sandbox.faults.add("batches_create", times=1, **fault)
    batch = client.create(_requests(2))
    assert [state.batch_id for state in client.created_since(datetime(2000, 1, 1, tzinfo=UTC))] == [batch.batch_id]
    client.close()


def test_a_garbled_reply_to_a_batch_create_or_retrieve_is_one_line_saying_what_next(empty_sandbox):
    client = BatchClient(api_key=ANTHROPIC_KEY, base_url=empty_sandbox.url, model=MODEL, timeout=5, max_retries=2)
    empty_sandbox.faults.add("batches_create", "invalid_json", times=1)
    with pytest.raises(InvalidReply, match=r"reply to the batch create could not be read .*adopts it\.$"):
        client.create(_requests(1))
    batch = client.create(_requests(1))
    empty_sandbox.faults.add("batches_retrieve", "invalid_json", times=1)
    with pytest.raises(InvalidReply, match=r"reply to the batch retrieve could not be read .*asks again\.$"):
        client.retrieve(batch.batch_id)
    client.close()


def test_batch_calls_failing_for_good_say_what_becomes_of_the_batch(empty_sandbox):
    client = BatchClient(api_key=ANTHROPIC_KEY, base_url=empty_sandbox.url, model=MODEL, timeout=5, max_retries=0)
    batch = client.create(_requests(1))
    empty_sandbox.faults.add("batches_create", "status", status=500, times=None)
    with pytest.raises(TransientServiceError, match=r"HTTP 500 .*; its logs stay queued and the next run submits"):
        client.create(_requests(1))
    empty_sandbox.faults.add("batches_retrieve", "status", status=503, times=None)
    with pytest.raises(TransientServiceError, match=r"HTTP 503 .*; the batch stays open and the next run asks again"):
        client.retrieve(batch.batch_id)
    empty_sandbox.faults.add("batches_list", "latency", delay=0.6, times=None)
    slow = BatchClient(api_key=ANTHROPIC_KEY, base_url=empty_sandbox.url, model=MODEL, timeout=0.3, max_retries=0)
    with pytest.raises(TransientServiceError, match=r"did not answer in time .*the batch stays open"):
        list(slow.created_since(datetime(2000, 1, 1, tzinfo=UTC)))
    client.close()
    slow.close()


def test_a_batch_refused_with_400_is_the_batchs_fault_not_one_logs(empty_sandbox):
    client = BatchClient(api_key=ANTHROPIC_KEY, base_url=empty_sandbox.url, model=MODEL, timeout=5, max_retries=0)
    empty_sandbox.faults.add("batches_create", "status", status=400, times=None)
    with pytest.raises(PermanentServiceError, match=r"refused the Message Batches call with HTTP 400.*check") as raised:
        client.create(_requests(1))
    assert not isinstance(raised.value, LogRefused)
    client.close()


def test_results_anthropic_has_none_of_are_not_found_whether_the_url_answers_404_or_the_batch_has_none(empty_sandbox):
    client = BatchClient(api_key=ANTHROPIC_KEY, base_url=empty_sandbox.url, model=MODEL, timeout=5, max_retries=0)
    ended = client.create(_requests(2))
    assert client.retrieve(ended.batch_id).ended
    empty_sandbox.faults.add("batches_results", "status", status=404, times=1)
    with pytest.raises(ResultsNotFound, match=rf"no results for batch {ended.batch_id} \(HTTP 404\)") as raised:
        list(client.results(ended.batch_id, tool_name=TOOL["name"]))
    assert raised.value.status == 404
    empty_sandbox.batches.processing_seconds = 3600
    processing = client.create(_requests(2))  # no results_url until it ends: the SDK stops before asking
    with pytest.raises(ResultsNotFound, match=rf"no results for batch {processing.batch_id} \(the batch has no"):
        list(client.results(processing.batch_id, tool_name=TOOL["name"]))
    client.close()


def test_a_batch_anthropic_archived_says_when_and_one_not_yet_archived_says_none(empty_sandbox):
    client = BatchClient(api_key=ANTHROPIC_KEY, base_url=empty_sandbox.url, model=MODEL, timeout=5, max_retries=0)
    batch = client.create(_requests(1))
    assert client.retrieve(batch.batch_id).archived_at is None
    empty_sandbox.batches.backdate(batch.batch_id, 30 * 86400)
    state = client.retrieve(batch.batch_id)
    assert state.archived_at == state.created_at + timedelta(days=29)
    client.close()
