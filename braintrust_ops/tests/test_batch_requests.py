import json
import re

from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.batch_requests import MAX_REQUESTS, chunked, custom_id, request_bytes
from braintrust_ops.tests.strategies import json_values, text

# platform.claude.com/docs/en/api/messages/batches/create: custom_id
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def test_custom_id_is_stable_and_accepted_by_the_api_whatever_the_log_id_holds():
    for log_id in ["plain", "with space/and:colon", "עברית 🙂", "x" * 255, "\ud83d", ""]:
        assert CUSTOM_ID.match(custom_id(log_id)), log_id
        assert custom_id(log_id) == custom_id(log_id)
    assert custom_id("a") != custom_id("b")


def test_request_bytes_is_never_less_than_the_compact_utf8_json_the_sdk_sends():
    request = {"custom_id": "log-1", "params": {"messages": [{"role": "user", "content": "שבת 🙂 " * 50}]}}
    sent = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode()
    assert request_bytes(request) >= len(sent) + 1


def test_chunks_keep_order_and_respect_the_request_count_cap():
    chunks = list(chunked(range(10), weigh=lambda item: 1, max_requests=4))
    assert chunks == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_chunks_respect_the_byte_cap_and_an_oversized_item_goes_alone():
    chunks = list(chunked([3, 3, 3, 10, 1], weigh=lambda item: item, max_bytes=7))
    assert chunks == [[3, 3], [3], [10], [1]]


def test_the_caps_never_exceed_the_apis_limits():
    chunks = list(chunked(range(MAX_REQUESTS + 1), weigh=lambda item: 0, max_requests=10**9))
    assert [len(chunk) for chunk in chunks] == [MAX_REQUESTS, 1]


def test_nothing_in_no_chunks_out():
    assert list(chunked([], weigh=len)) == []


def test_a_batch_is_filled_up_to_the_byte_cap_exactly_and_each_new_batch_starts_empty():
    assert list(chunked([3, 4], weigh=lambda item: item, max_bytes=7)) == [[3, 4]]
    assert list(chunked([5, 3, 4, 2], weigh=lambda item: item, max_bytes=7)) == [[5], [3, 4], [2]]


def test_the_weights_of_a_batchs_requests_cover_its_body_even_for_the_smallest_requests():
    for count in (1, 2, 50):
        requests = [{}] * count
        body = json.dumps({"requests": requests}, separators=(",", ":"))
        envelope = len('{"requests":[]}')
        assert sum(request_bytes(request) for request in requests) >= len(body) - envelope


# --- properties -------------------------------------------------------------------------------------


@given(text, text)
def test_any_log_id_gets_a_custom_id_the_api_accepts_and_two_ids_never_share_one(first, second):
    assert CUSTOM_ID.fullmatch(custom_id(first)) and custom_id(first) == custom_id(first)
    assert (custom_id(first) == custom_id(second)) == (first == second)


@given(st.dictionaries(text, json_values, max_size=4))
def test_a_requests_share_of_the_body_is_never_less_than_what_the_sdk_sends(params):
    request = {"custom_id": custom_id("log"), "params": params}
    sent = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    assert request_bytes(request) >= len(sent) + 1


@given(
    weights=st.lists(st.integers(0, 50), max_size=40),
    max_requests=st.integers(1, MAX_REQUESTS + 5),
    max_bytes=st.integers(1, 120),
)
def test_chunks_hold_every_item_once_in_order_within_both_caps(weights, max_requests, max_bytes):
    chunks = list(
        chunked(list(enumerate(weights)), weigh=lambda item: item[1], max_requests=max_requests, max_bytes=max_bytes)
    )
    assert [item for chunk in chunks for item in chunk] == list(enumerate(weights))
    for chunk in chunks:
        assert 1 <= len(chunk) <= min(max_requests, MAX_REQUESTS)
        assert len(chunk) == 1 or sum(weight for _, weight in chunk) <= max_bytes
