import contextvars
import threading

import pytest

from braintrust_ops.prefetch import prefetched

REQUEST_ID = contextvars.ContextVar("request_id", default=None)


def test_prefetched_yields_every_item_in_order():
    assert list(prefetched(iter(range(5)))) == [0, 1, 2, 3, 4]


def test_prefetched_of_an_empty_iterator_yields_nothing():
    assert list(prefetched(iter([]))) == []


def test_prefetched_fetches_the_next_item_while_the_caller_holds_the_current_one():
    second_fetched = threading.Event()

    def source():
        yield "first"
        second_fetched.set()
        yield "second"

    items = prefetched(source())
    assert next(items) == "first"
    # The caller has not asked for the second item yet; it is already being fetched.
    assert second_fetched.wait(5)
    assert next(items) == "second"


def test_prefetched_runs_at_most_one_item_ahead():
    produced = []

    def source():
        for number in range(10):
            produced.append(number)
            yield number

    items = prefetched(source())
    assert next(items) == 0
    threading.Event().wait(0.2)  # time for a runaway producer to show itself
    assert produced == [0, 1]


def test_an_error_of_the_source_reaches_the_caller_after_the_items_before_it():
    def source():
        yield 1
        raise RuntimeError("page 2 failed")

    items = prefetched(source())
    assert next(items) == 1
    with pytest.raises(RuntimeError, match="page 2 failed"):
        next(items)


def test_the_source_sees_the_callers_context_variables():
    def source():
        yield REQUEST_ID.get()

    token = REQUEST_ID.set("run-42")
    try:
        assert list(prefetched(source())) == ["run-42"]
    finally:
        REQUEST_ID.reset(token)
