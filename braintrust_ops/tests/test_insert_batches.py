"""Insert requests cut by size as well as by count (pure functions)."""

import json

from braintrust_ops.insert_batches import batches, body_size, encoded_size, fits_alone


def test_the_body_size_is_exactly_what_requests_sends():
    events = [{"id": "a", "input": "שבת"}, {"id": "b", "expected": None}]
    sent = json.dumps({"events": events}, allow_nan=False).encode()  # requests' json= encoding
    assert body_size(encoded_size(event) for event in events) == len(sent)


def test_batches_respect_the_row_count():
    items = [(index, 10) for index in range(5)]
    assert list(batches(items, max_rows=2, max_bytes=10_000)) == [[0, 1], [2, 3], [4]]


def test_batches_close_before_the_byte_cap():
    items = [(index, 100) for index in range(5)]
    cap = body_size([100, 100])  # two items fit exactly, a third does not
    assert list(batches(items, max_rows=100, max_bytes=cap)) == [[0, 1], [2, 3], [4]]
    assert all(body_size([100] * len(batch)) <= cap for batch in batches(items, max_rows=100, max_bytes=cap))


def test_an_item_over_the_cap_on_its_own_is_a_batch_of_one():
    assert list(batches([("small", 10), ("huge", 1000), ("small2", 10)], max_rows=10, max_bytes=500)) == [
        ["small"],
        ["huge"],
        ["small2"],
    ]
    assert not fits_alone(1000, 500) and fits_alone(10, 500)


def test_the_body_size_of_one_event_has_no_separator():
    event = {"id": "a"}
    assert body_size([encoded_size(event)]) == len(json.dumps({"events": [event]}))


def test_an_item_that_fills_the_cap_exactly_fits_alone():
    assert fits_alone(100, body_size([100])) and not fits_alone(100, body_size([100]) - 1)


def test_every_batch_is_as_full_as_the_cap_allows_and_never_over_it():
    sizes = [10, 30, 20, 10, 40, 10, 10]
    items = list(enumerate(sizes))
    for cap in range(body_size([40]), body_size(sizes) + 1):
        cut = list(batches(items, max_rows=100, max_bytes=cap))
        assert [index for batch in cut for index in batch] == list(range(len(sizes)))
        for batch, following in zip(cut, cut[1:], strict=False):
            assert body_size(sizes[index] for index in batch) <= cap
            assert body_size(sizes[index] for index in [*batch, following[0]]) > cap
        assert body_size(sizes[index] for index in cut[-1]) <= cap
