"""The Message Batches client against the sandbox, through the real SDK: what a broken results stream becomes."""

import pytest

from braintrust_ops.clients.claude import SDK_HTTP, tool_params
from braintrust_ops.clients.claude_batches import BatchClient
from braintrust_ops.exceptions import TransientServiceError
from braintrust_ops.taggable_tags import TaggableTag
from braintrust_ops.tagging_prompt import build_tool
from braintrust_ops_sandbox import ANTHROPIC_KEY

MODEL = "claude-haiku-4-5"
TOOL = build_tool([TaggableTag("halacha", "Questions of Jewish law")], strict=False)


def test_results_cut_off_mid_stream_are_a_transient_failure_caused_by_the_sdks_own_http_error(empty_sandbox):
    """The SDK raises its HTTP library's error as it is while a stream is read: httpx's under anthropic 0.x,
    httpx2's under 1.x and later. Either way the batch is read again by the next run."""
    client = BatchClient(api_key=ANTHROPIC_KEY, base_url=empty_sandbox.url, model=MODEL, timeout=5, max_retries=0)
    params = tool_params(model=MODEL, max_tokens=100, system="Tag the log.", user_text="Shabbat?", tool=TOOL)
    batch = client.create([{"custom_id": f"log-{n}", "params": params} for n in range(4)])
    assert client.retrieve(batch.batch_id).ended
    empty_sandbox.faults.add("batches_results", "partial", times=1)
    with pytest.raises(TransientServiceError, match=f"The results of batch {batch.batch_id} broke off") as raised:
        list(client.results(batch.batch_id, tool_name=TOOL["name"]))
    assert isinstance(raised.value.__cause__, SDK_HTTP.HTTPError)
    assert [outcome.kind for outcome in client.results(batch.batch_id, tool_name=TOOL["name"])] == ["succeeded"] * 4
    client.close()
