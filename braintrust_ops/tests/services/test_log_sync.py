"""Logs entering the database: one poison row never costs the rest of its page (SQLite and PostgreSQL)."""

import itertools
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.btql_query import is_xact_id
from braintrust_ops.models import TaggedLog
from braintrust_ops.services.log_sync import MAX_REFUSED_LISTED, FetchCounts, clean_rows, logs_store, newer_xact
from braintrust_ops.storable import MAX_JSON_DEPTH, STRING_KEY, is_storable_text, original_json
from braintrust_ops.tests.strategies import json_values, text

CREATED = "2026-11-24T01:00:00.000000Z"


def _row(log_id, **fields):
    return {"id": log_id, "created": CREATED, "_xact_id": "1000000000000000001", "input": "q", "output": "a", **fields}


def _deep(depth):
    value: object = "leaf"
    for _ in range(depth):
        value = {"next": value}
    return value


def _store(pages):
    counts = FetchCounts()
    stored = [logs_store(rows, run=None) for rows in clean_rows(pages, counts)]
    return counts, stored


@pytest.mark.django_db(transaction=True)
def test_a_page_with_poison_rows_stores_every_other_row_and_counts_the_refused_ones():
    page = [
        _row("nul", input="a question\x00with a NUL", metadata={"k\x00": "v\x00"}),
        _row("x" * 300),
        _row("deep", input=_deep(MAX_JSON_DEPTH + 5)),
        _row("root-too-long", root_span_id="r" * 300),
        _row("fine"),
    ]
    counts, stored = _store([page])
    assert sorted(TaggedLog.objects.values_list("log_id", flat=True)) == ["fine", "nul"]
    assert counts.refused == 3 and sum(item.new for item in stored) == 2
    log = TaggedLog.objects.get(log_id="nul")
    assert original_json(log.input) == "a question\x00with a NUL" and original_json(log.metadata) == {"k\x00": "v\x00"}


@pytest.mark.django_db(transaction=True)
def test_content_postgresql_refuses_comes_back_from_the_database_exactly_as_it_came():
    """On PostgreSQL jsonb refuses NUL and lone surrogates; on SQLite they would be stored as JSON escapes.
    Either way the row reads back as Braintrust sent it, and never as the text a user might have typed."""
    content = {
        "messages": ["NUL\x00", "typed \\u0000", "half \ud83d emoji", "typed \\ud83d", "\\"],
        "k\x00": 1,
        "k\\u0000": 2,
        STRING_KEY: "look-alike",
    }
    _store([[_row("odd", input=content, output="answer\x00", metadata={"lone": "\udc4d"})]])
    log = TaggedLog.objects.get(log_id="odd")
    assert original_json(log.input) == content
    assert (original_json(log.output), original_json(log.metadata)) == ("answer\x00", {"lone": "\udc4d"})


@pytest.mark.django_db(transaction=True)
def test_a_row_the_database_still_refuses_is_counted_and_the_rest_of_the_page_is_stored(monkeypatch):
    """A fault no sanitising catches (here injected: the database refuses one row's insert)."""
    original = TaggedLog.objects.bulk_create

    def refuse_poison(objs, *args, **kwargs):
        if any(obj.log_id == "poison" for obj in objs):
            raise DatabaseError("value refused by the database")
        return original(objs, *args, **kwargs)

    monkeypatch.setattr(TaggedLog.objects, "bulk_create", refuse_poison)
    _, (stored,) = _store([[_row("a"), _row("poison"), _row("b")]])
    assert sorted(TaggedLog.objects.values_list("log_id", flat=True)) == ["a", "b"]
    assert (stored.new, stored.unstorable) == (2, 1)


def test_the_newest_xact_id_is_the_greatest_number_of_every_row_seen_refused_ones_included():
    page = [
        _row("a", _xact_id="999999999999999999"),
        _row("x" * 300, _xact_id="1000000000000000002"),  # refused, still seen
        _row("b", _xact_id="1000000000000000001"),
    ]
    counts = FetchCounts()
    list(clean_rows([page], counts))
    assert counts.newest_xact_id == "1000000000000000002"


def test_xact_ids_compare_as_numbers_not_text():
    assert newer_xact("999", "1000") == "1000"
    assert newer_xact(None, "5") == "5" and newer_xact(None, None) is None


def test_a_zoneless_created_time_is_utc():
    counts = FetchCounts()
    (rows,) = list(clean_rows([[_row("ok", created="2026-11-24T01:00:00")]], counts))
    assert rows[0].logged_at == datetime(2026, 11, 24, 1, tzinfo=UTC)


def test_rows_without_a_readable_created_time_are_counted_and_skipped():
    counts = FetchCounts()
    pages = [
        [
            {"id": "none", "created": None},
            {"id": "bad", "created": "yesterday"},
            {"id": "ok", "created": "2026-11-24T01:00:00"},
        ]
    ]
    (rows,) = list(clean_rows(pages, counts))
    assert [row.log_id for row in rows] == ["ok"]
    assert counts.without_created == 2 and counts.fetched == 3
    assert counts.newest_created == datetime(2026, 11, 24, 1, tzinfo=UTC)  # a zoneless time is UTC


def test_ids_are_kept_exactly_and_one_that_is_not_a_string_is_refused_never_merged():
    counts = FetchCounts()
    page = [_row("12345"), _row(12345), _row(" 12345"), _row("12345 "), _row("12345")]
    (rows,) = list(clean_rows([page], counts))
    assert [row.log_id for row in rows] == ["12345", " 12345", "12345 "]
    assert (counts.refused, counts.duplicates, counts.without_id) == (1, 1, 0)


def test_refused_rows_are_listed_by_id_with_why_up_to_a_bound():
    counts = FetchCounts()
    page = [_row(f"{index:03d}" + "x" * 300) for index in range(MAX_REFUSED_LISTED + 5)]
    page += [{"id": 7, "created": CREATED}, {"id": "no-time", "created": "yesterday"}]
    list(clean_rows([page], counts))
    assert counts.refused == MAX_REFUSED_LISTED + 6 and len(counts.refused_logs) == MAX_REFUSED_LISTED
    assert counts.refused_logs[0].startswith('"000xxx') and counts.refused_logs[0].endswith("over 255")


def test_a_row_without_a_time_and_one_the_database_refuses_are_listed_with_why(monkeypatch, db):
    counts = FetchCounts()
    list(clean_rows([[{"id": "no-time", "created": "yesterday"}, {"id": 7, "created": CREATED}]], counts))
    assert counts.refused_logs == [
        '"no-time": it has no readable created time',
        "7: its id is a number, not a string (an id is a string: OpenAPI ProjectLogsEvent.id)",
    ]
    original = TaggedLog.objects.bulk_create

    def refuse_poison(objs, *args, **kwargs):
        if any(obj.log_id == "poison" for obj in objs):
            raise DatabaseError("value refused\x00 by the database\nDETAIL: more")
        return original(objs, *args, **kwargs)

    monkeypatch.setattr(TaggedLog.objects, "bulk_create", refuse_poison)
    _, (stored,) = _store([[_row("poison")]])
    assert stored.refused_logs == ['"poison": the database refused it (value refused\\u0000 by the database)']


# --- properties -------------------------------------------------------------------------------------

_example_ids = itertools.count()


@given(content=json_values, metadata=json_values)
def test_any_content_comes_back_from_the_database_exactly(db, content, metadata):
    """On SQLite and PostgreSQL alike (jsonb refuses NUL and lone surrogates): stored, then read back."""
    log_id = f"property-{next(_example_ids)}"
    _store([[_row(log_id, input=content, output=content, metadata=metadata)]])
    log = TaggedLog.objects.get(log_id=log_id)
    assert (original_json(log.input), original_json(log.output), original_json(log.metadata)) == (
        content,
        content,
        metadata,
    )


BTQL_FIELDS = ["id", "created", "_xact_id", "root_span_id", "input", "output", "metadata", "is_root"]
btql_rows = st.one_of(
    st.dictionaries(
        st.one_of(st.sampled_from(BTQL_FIELDS), text),
        st.one_of(
            json_values,
            st.sampled_from([CREATED, "2026-11-24T01:00:00+02:00", "2026-11-24", "yesterday", "1000000000000000001"]),
        ),
        max_size=8,
    ),
    json_values,  # a row that is not an object at all
)


@given(st.lists(st.lists(btql_rows, max_size=8), max_size=3))
def test_any_btql_rows_are_kept_or_counted_never_crashing_the_page(pages):
    """Every row read is a stored row, or counted: without an id, a repeat, or refused with a reason."""
    counts = FetchCounts()
    kept = [row for rows in clean_rows(pages, counts) for row in rows]
    accounted = len(kept) + counts.without_id + counts.duplicates + counts.without_created + counts.refused
    assert accounted == counts.fetched == sum(map(len, pages))
    assert len(counts.refused_logs) == min(counts.refused + counts.without_created, MAX_REFUSED_LISTED)
    assert len({row.log_id for row in kept}) == len(kept)
    assert counts.newest_xact_id is None or is_xact_id(counts.newest_xact_id)


def test_an_xact_id_that_is_not_decimal_never_becomes_the_watermark():
    counts = FetchCounts()
    list(clean_rows([[_row("a", _xact_id="999"), _row("b", _xact_id="99999x"), _row("c", _xact_id="١٢٣٤٥")]], counts))
    assert counts.newest_xact_id == "999"


@given(st.lists(text, max_size=12))
def test_distinct_ids_stay_distinct_rows_and_none_is_changed(ids):
    """Ids that differ only by spaces, by a lone surrogate or by a backslash are different logs."""
    counts = FetchCounts()
    page = [_row(log_id) for log_id in ids]
    kept = [row.log_id for rows in clean_rows([page], counts) for row in rows]
    storable = [log_id for log_id in dict.fromkeys(ids) if log_id and is_storable_text(log_id) and len(log_id) <= 255]
    assert kept == storable


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)


@given(tags=json_values)
def test_a_rows_tags_whatever_they_hold_are_read_as_its_string_tags_in_order(tags):
    """The tags reviews compare: a list's strings, kept in order; anything else is no tag."""
    row = {"id": "log-1", "created": "2026-11-23T12:00:00Z", "tags": tags}
    (rows,) = clean_rows([[row]], FetchCounts())
    expected = tuple(tag for tag in tags if isinstance(tag, str)) if isinstance(tags, list) else ()
    assert rows[0].tags == expected
