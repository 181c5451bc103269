"""The structured BTQL query for a project's logs (pure functions)."""

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.btql_query import btql_time, logs_filter, logs_query, next_page_rows
from braintrust_ops.tests.strategies import text
from braintrust_ops_sandbox import PROJECT_ID
from braintrust_ops_sandbox.btql_model import normalise_time
from braintrust_ops_sandbox.btql_structured import parse_structured

SINCE = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _compare(op, field, value):
    return {"op": op, "left": {"op": "ident", "name": [field]}, "right": {"op": "literal", "value": value}}


def test_the_filter_bounds_created_the_ingestion_watermark_and_root_spans():
    assert logs_filter(since=SINCE, until=SINCE + timedelta(days=1), after_xact_id="1000192656880881099") == {
        "op": "and",
        "children": [
            _compare("ge", "created", "2026-11-23T02:00:00.000000Z"),
            _compare("lt", "created", "2026-11-24T02:00:00.000000Z"),
            _compare("gt", "_xact_id", "1000192656880881099"),
            _compare("eq", "is_root", True),
        ],
    }


def test_a_backup_filter_keeps_every_span_and_has_only_the_created_range():
    assert logs_filter(since=SINCE, root_only=False) == {
        "op": "and",
        "children": [_compare("ge", "created", "2026-11-23T02:00:00.000000Z")],
    }


def test_a_time_in_another_zone_is_written_in_utc():
    assert btql_time(datetime(2026, 11, 23, 4, 0, tzinfo=timezone(timedelta(hours=2)))) == "2026-11-23T02:00:00.000000Z"


@pytest.fixture
def machine_two_hours_east_of_utc(monkeypatch):
    monkeypatch.setenv("TZ", "EET-2")  # a POSIX zone: no time-zone database needed
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_time_is_written_in_utc_whatever_the_machine_s_time_zone(machine_two_hours_east_of_utc):
    assert btql_time(datetime(2026, 11, 23, 4, 0, tzinfo=timezone(timedelta(hours=2)))) == "2026-11-23T02:00:00.000000Z"


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        btql_time(datetime(2026, 11, 23))


def test_the_query_carries_the_project_the_limit_and_the_cursor_inside_it():
    query = logs_query(project_id="p-1", filter_={"op": "and", "children": []}, limit=250, cursor="c-9")
    assert query["from"] == {
        "op": "function",
        "name": {"op": "ident", "name": ["project_logs"]},
        "args": [{"op": "literal", "value": "p-1"}],
    }
    assert (query["select"], query["limit"], query["cursor"]) == ([{"op": "star"}], 250, "c-9")


@pytest.mark.parametrize(
    "rows, body_bytes, expected",
    [
        (1000, 2_000_000, 1000),  # 2 KB rows: the largest page fits the 8 MB target
        (100, 4_000_000, 209),  # 40 KB rows: about 8 MB a page
        (10, 100_000_000, 1),  # one row over the target: one row a page, never none
        (1, 4 * 2**20, 2),  # a page of one 4 MB row: two rows a page
        (0, 0, 1000),  # nothing seen yet
        (0, 20, 1000),  # an empty page's bytes say nothing of a row's size
        (5, 0, 1000),  # no bytes counted: nothing to go by
    ],
)
def test_the_next_page_size_follows_the_bytes_per_row_seen(rows, body_bytes, expected):
    assert next_page_rows(rows=rows, body_bytes=body_bytes, target_bytes=8 * 2**20, max_rows=1000) == expected


# --- properties: any input is a query the sandbox's parser accepts, or a clear error ----------------

aware_times = st.datetimes(timezones=st.timezones() | st.just(UTC))
decimal_xact_ids = st.from_regex(r"\A[0-9]{1,20}\Z")


@given(
    since=aware_times,
    until=st.none() | aware_times,
    after=st.none() | decimal_xact_ids,
    root_only=st.booleans(),
    limit=st.integers(1, 5000),
    cursor=st.none() | text,
)
def test_any_times_watermark_and_cursor_make_a_query_the_parser_reads_back_as_meant(
    since, until, after, root_only, limit, cursor
):
    try:
        filter_ = logs_filter(since=since, until=until, after_xact_id=after, root_only=root_only)
    except ValueError as exc:  # a time UTC cannot hold (year 1 east of Greenwich): said, not a traceback
        assert "out of the range" in str(exc)
        return
    query = parse_structured(logs_query(project_id=PROJECT_ID, filter_=filter_, limit=limit, cursor=cursor))
    conditions = {(c.field, c.op): c.value for c in query.conditions}
    assert conditions[("created", "ge")] == normalise_time(btql_time(since))
    assert datetime.fromisoformat(btql_time(since)) == since.astimezone(UTC)  # the same instant, fold included
    assert (("created", "lt") in conditions) == (until is not None)
    assert conditions.get(("_xact_id", "gt")) == (int(after) if after is not None else None)
    assert (("is_root", "eq") in conditions) == root_only
    assert query.cursor == (cursor or None) and query.limit == min(limit, 1000)


@given(st.one_of(text, st.integers(), st.none(), st.booleans()).filter(lambda value: not _decimal(value)))
def test_a_watermark_that_is_not_a_decimal_transaction_id_is_refused_by_name(after):
    if after is None:
        assert logs_filter(since=SINCE, after_xact_id=after)["children"][-1]["left"]["name"] == ["is_root"]
        return
    with pytest.raises(ValueError, match="is not a decimal transaction id"):
        logs_filter(since=SINCE, after_xact_id=after)


def _decimal(value) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit()


def test_a_time_of_year_one_is_written_with_four_digits():
    assert btql_time(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000000Z"


def test_a_time_utc_cannot_hold_is_refused_saying_so():
    with pytest.raises(ValueError, match=r"0001-01-01T00:00:00\+05:00 is out of the range of UTC times"):
        btql_time(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))))
