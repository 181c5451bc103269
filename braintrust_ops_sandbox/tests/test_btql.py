"""POST /btql in the sandbox, held to Braintrust's docs (reference/sql, reference/btql) and the SDK's
structured query (braintrust 0.47 ``logger.py`` ``ObjectFetcher._refetch``), over real HTTP."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from braintrust_ops_sandbox import BRAINTRUST_KEY, PROJECT_ID

AUTH = {"Authorization": f"Bearer {BRAINTRUST_KEY}"}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SINCE = "2025-12-01T00:00:00Z"


def post(sandbox, body: dict) -> requests.Response:
    return requests.post(f"{sandbox.url}/btql", headers=AUTH, json=body, timeout=5)


def sql(where=f"created >= '{SINCE}'", *, project=PROJECT_ID, order="", limit=None, cursor=None) -> dict:
    text = f"SELECT * FROM project_logs('{project}') WHERE {where}"
    text += f" ORDER BY {order}" if order else ""
    text += f" LIMIT {limit}" if limit is not None else ""
    text += f" OFFSET '{cursor}'" if cursor else ""
    return {"query": text}


def pipe(where=f"created >= '{SINCE}'", *, project=PROJECT_ID, order="", limit=None, cursor=None) -> dict:
    clauses = ["select: *", f"from: project_logs('{project}')", f"filter: {where}"]
    clauses += [f"sort: {order}"] if order else []
    clauses += [f"limit: {limit}"] if limit is not None else []
    clauses += [f"cursor: '{cursor}'"] if cursor else []
    return {"query": " | ".join(clauses)}


def compare(op: str, field: str, value) -> dict:
    """The SDK's expression shape (braintrust/trace.py ``_btql_cmp``)."""
    return {"op": op, "left": {"op": "ident", "name": [field]}, "right": {"op": "literal", "value": value}}


def structured(filter_=None, *, project=PROJECT_ID, sort=None, limit=None, cursor=None) -> dict:
    query = {
        "select": [{"op": "star"}],
        "from": {
            "op": "function",
            "name": {"op": "ident", "name": ["project_logs"]},
            "args": [{"op": "literal", "value": project}],
        },
        "filter": filter_ if filter_ is not None else compare("ge", "created", SINCE),
        "cursor": cursor,
    }
    if sort:
        field, direction = sort
        query["sort"] = [{"expr": {"op": "ident", "name": [field]}, "dir": direction}]
    if limit is not None:
        query["limit"] = limit
    return {"query": query}


FORMS = {"sql": sql, "pipe": pipe, "structured": lambda **kw: structured(**kw)}


def pages(sandbox, form, **options) -> list[requests.Response]:
    """Every page of a query, following each page's cursor the way that form carries it."""
    replies, cursor = [], None
    while len(replies) < 50:
        replies.append(post(sandbox, FORMS[form](**options, cursor=cursor)))
        if not (cursor := replies[-1].json()["cursor"]):
            return replies
    raise AssertionError("the cursor never ran out")


def outputs(reply: requests.Response) -> list:
    return [row["output"] for row in reply.json()["data"]]


@pytest.mark.parametrize("form", FORMS)
def test_each_query_form_pages_through_every_row_with_the_cursor_inside_the_query(empty_sandbox, form):
    empty_sandbox.state.add_logs(25, created=lambda index: T0 + timedelta(seconds=index))
    replies = pages(empty_sandbox, form, limit=10)
    assert [len(reply.json()["data"]) for reply in replies] == [10, 10, 5, 0]
    assert len({row["id"] for reply in replies for row in reply.json()["data"]}) == 25


def test_a_top_level_cursor_is_ignored_so_the_first_page_comes_again(empty_sandbox):
    empty_sandbox.state.add_logs(5, created=T0)
    first = post(empty_sandbox, sql(limit=2)).json()
    again = post(empty_sandbox, {**sql(limit=2), "cursor": first["cursor"]}).json()
    assert again["data"] == first["data"]


def test_every_non_empty_page_carries_a_cursor_in_body_and_header_and_the_empty_end_page_has_none(empty_sandbox):
    empty_sandbox.state.add_logs(3, created=T0)
    replies = pages(empty_sandbox, "structured", limit=2)
    assert [len(reply.json()["data"]) for reply in replies] == [2, 1, 0]
    for reply in replies[:2]:
        assert reply.json()["cursor"] and reply.headers["x-bt-cursor"] == reply.json()["cursor"]
    assert replies[2].json()["cursor"] is None and "x-bt-cursor" not in replies[2].headers


def test_with_the_cursor_on_last_page_switch_off_a_short_page_ends_the_results(empty_sandbox):
    empty_sandbox.btql_cursor_on_last_page = False
    empty_sandbox.state.add_logs(3, created=T0)
    replies = pages(empty_sandbox, "structured", limit=2)
    assert [len(reply.json()["data"]) for reply in replies] == [2, 1]
    assert "x-bt-cursor" not in replies[1].headers


@pytest.mark.parametrize("form", FORMS)
def test_a_project_logs_query_without_a_range_filter_is_refused_with_400(empty_sandbox, form):
    body = structured(compare("eq", "is_root", True)) if form == "structured" else FORMS[form](where="is_root")
    reply = post(empty_sandbox, body)
    assert reply.status_code == 400
    assert "project_logs needs a range filter on created, _xact_id or _pagination_key" in reply.json()["error"]


@pytest.mark.parametrize("field", ["id", "root_span_id"])
def test_an_id_or_root_span_id_equality_needs_no_range_filter(empty_sandbox, field):
    empty_sandbox.state.add_log(id="wanted", created=T0, output="wanted")
    empty_sandbox.state.add_log(created=T0, output="other")
    assert outputs(post(empty_sandbox, sql(f"{field} = 'wanted'"))) == ["wanted"]


@pytest.mark.parametrize(
    "literal",
    [
        "2026-01-01",
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T02:00:00+02:00",
        "2025-12-31T19:00:00.000-05:00",
    ],
)
def test_created_literals_compare_as_instants_whatever_their_iso_form(empty_sandbox, literal):
    for seconds in (-1, 0, 1):
        empty_sandbox.state.add_log(created=T0 + timedelta(seconds=seconds), output=seconds)
    assert sorted(outputs(post(empty_sandbox, sql(f"created >= '{literal}'")))) == [0, 1]
    assert outputs(post(empty_sandbox, structured(compare("lt", "created", literal)))) == [-1]


@pytest.mark.parametrize("form", ["sql", "pipe"])
@pytest.mark.parametrize("field", ["_pagination_key", "_xact_id"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_a_cursor_sort_pages_in_that_order_through_every_row(empty_sandbox, form, field, direction):
    for index in range(7):
        empty_sandbox.state.add_log(created=T0 - timedelta(minutes=index), output=index)
    replies = pages(empty_sandbox, form, order=f"{field} {direction.upper()}", limit=3)
    assert [len(reply.json()["data"]) for reply in replies] == [3, 3, 1, 0]
    got = [output for reply in replies for output in outputs(reply)]
    assert got == (list(range(7)) if direction == "asc" else list(range(6, -1, -1)))


def test_without_a_sort_rows_come_newest_ingestion_first_not_in_created_order(empty_sandbox):
    for minutes in (5, 0, 10):
        empty_sandbox.state.add_log(created=T0 + timedelta(minutes=minutes), output=minutes)
    assert outputs(post(empty_sandbox, sql())) == [10, 0, 5]


def test_a_created_sort_orders_by_time_and_never_carries_a_cursor(empty_sandbox):
    for minutes in (5, 0, 10):
        empty_sandbox.state.add_log(created=T0 + timedelta(minutes=minutes), output=minutes)
    reply = post(empty_sandbox, pipe(order="created desc", limit=2))
    assert outputs(reply) == [10, 5] and reply.json()["cursor"] is None
    assert outputs(post(empty_sandbox, structured(sort=("created", "asc")))) == [0, 5, 10]


def test_a_cursor_used_with_a_created_sort_is_refused_with_400(empty_sandbox):
    empty_sandbox.state.add_logs(3, created=T0)
    cursor = post(empty_sandbox, sql(limit=1)).json()["cursor"]
    assert post(empty_sandbox, sql(order="created ASC", limit=1, cursor=cursor)).status_code == 400


@pytest.mark.parametrize("cursor", ["not-a-sandbox-cursor", "sbx1.!!", "eyJzb3J0IjogMX0="])
def test_a_cursor_the_sandbox_did_not_issue_is_refused_with_400(empty_sandbox, cursor):
    assert post(empty_sandbox, sql(cursor=cursor)).status_code == 400


def test_a_cursor_issued_for_another_sort_is_refused_with_400(empty_sandbox):
    empty_sandbox.state.add_logs(3, created=T0)
    cursor = post(empty_sandbox, sql(order="_xact_id ASC", limit=1)).json()["cursor"]
    assert post(empty_sandbox, sql(order="_xact_id DESC", limit=1, cursor=cursor)).status_code == 400
    assert post(empty_sandbox, sql(order="_pagination_key ASC", limit=1, cursor=cursor)).status_code == 400
    assert post(empty_sandbox, sql(order="_xact_id ASC", limit=1, cursor=cursor)).status_code == 200


def test_limit_defaults_to_and_is_capped_at_1000(empty_sandbox):
    empty_sandbox.state.add_logs(1200, created=T0)
    assert len(post(empty_sandbox, sql()).json()["data"]) == 1000
    assert len(post(empty_sandbox, structured(limit=5000)).json()["data"]) == 1000


@pytest.mark.parametrize("body", [sql(limit=0), structured(limit=0), structured(limit=-1), pipe(limit=0)])
def test_a_limit_below_1_is_refused_with_400(empty_sandbox, body):
    assert post(empty_sandbox, body).status_code == 400


def test_fmt_other_than_json_is_refused_and_the_other_documented_parameters_are_accepted(empty_sandbox):
    empty_sandbox.state.add_log(created=T0)
    assert post(empty_sandbox, {**sql(), "fmt": "parquet"}).status_code == 400
    documented = {"fmt": "json", "tz_offset": 120, "audit_log": False, "version": "1"}
    assert len(post(empty_sandbox, {**sql(), **documented}).json()["data"]) == 1


@pytest.mark.parametrize(
    "body, named",
    [
        (sql(f"created >= '{SINCE}' AND score > 1"), "score"),
        (sql("created >= 'yesterday'"), "yesterday"),
        (sql("created >= '2026-01-01T00:00:00'"), "2026-01-01T00:00:00"),
        (sql(f"created >= '{SINCE}' AND id > 'x'"), "id gt"),
        (structured({"op": "or", "children": [compare("ge", "created", SINCE)]}), "'or'"),
        ({"query": f"SELECT id FROM project_logs('{PROJECT_ID}') WHERE created >= '{SINCE}'"}, "select 'id'"),
        ({"query": f"SELECT * FROM experiment('{PROJECT_ID}') WHERE created >= '{SINCE}'"}, "experiment"),
        ({"query": f"SELECT * FROM project_logs('{PROJECT_ID}') WHERE created >= '{SINCE}' OFFSET 1000"}, "OFFSET"),
        ({}, "query is required"),
    ],
)
def test_an_unsupported_query_is_refused_with_a_400_naming_what_is_unsupported(empty_sandbox, body, named):
    reply = post(empty_sandbox, body)
    assert reply.status_code == 400 and named in reply.json()["error"]


def test_xact_id_compares_as_a_number_not_as_a_string(empty_sandbox):
    empty_sandbox.state.add_logs(2, created=T0)
    # As strings, "999" sorts after every 19-digit id; as numbers it is below them all.
    assert len(post(empty_sandbox, sql("_xact_id > '999'")).json()["data"]) == 2
    assert len(post(empty_sandbox, structured(compare("gt", "_xact_id", 999))).json()["data"]) == 2


def test_rows_carry_19_digit_xact_ids_and_pagination_keys_that_increase_with_each_ingestion(empty_sandbox):
    rows = [empty_sandbox.state.add_log(created=T0 - timedelta(minutes=index)) for index in range(3)]
    xacts, keys = [row["_xact_id"] for row in rows], [row["_pagination_key"] for row in rows]
    assert all(len(xact) == 19 and xact.isdigit() for xact in xacts)
    assert [int(xact) for xact in xacts] == sorted(int(xact) for xact in xacts) and len(set(xacts)) == 3
    assert keys == sorted(keys) and len(set(keys)) == 3


def test_a_log_flushed_late_has_an_old_created_and_a_new_xact_id_that_a_later_query_finds(empty_sandbox):
    for minutes in range(3):
        empty_sandbox.state.add_log(created=T0 + timedelta(minutes=minutes), output=minutes)
    last = max(int(row["_xact_id"]) for row in post(empty_sandbox, sql()).json()["data"])
    empty_sandbox.state.add_log(created=T0 - timedelta(hours=5), output="late")
    news = post(empty_sandbox, sql(f"created >= '2025-12-31' AND _xact_id > '{last}'"))
    assert outputs(news) == ["late"] and news.json()["data"][0]["created"] < "2026-01-01"


def test_update_log_replaces_fields_and_gives_the_row_new_ingestion_keys(empty_sandbox):
    before = empty_sandbox.state.add_log(id="scored", created=T0, scores=None)
    empty_sandbox.state.add_log(created=T0)
    last = max(int(row["_xact_id"]) for row in post(empty_sandbox, sql()).json()["data"])
    after = empty_sandbox.state.update_log("scored", scores={"helpful": 1})
    assert int(after["_xact_id"]) > last and after["_pagination_key"] > before["_pagination_key"]
    [row] = post(empty_sandbox, structured(compare("gt", "_xact_id", str(last)))).json()["data"]
    assert (row["id"], row["scores"], row["created"]) == ("scored", {"helpful": 1}, before["created"])
    assert empty_sandbox.state.log_count() == 2


def test_update_log_of_an_unknown_id_raises_key_error(empty_sandbox):
    with pytest.raises(KeyError):
        empty_sandbox.state.update_log("nope", scores={})


@pytest.mark.parametrize(
    "body",
    [
        sql(f"created >= '{SINCE}' AND is_root"),
        sql(f"created >= '{SINCE}' AND is_root = true"),
        pipe(f"created >= '{SINCE}' and is_root"),
        structured({"op": "and", "children": [compare("ge", "created", SINCE), compare("eq", "is_root", True)]}),
        structured({"op": "and", "left": compare("ge", "created", SINCE), "right": compare("eq", "is_root", True)}),
    ],
)
def test_is_root_in_every_form_leaves_out_child_spans(empty_sandbox, body):
    for index in range(2):
        empty_sandbox.state.add_trace("q", "a", created=T0 + timedelta(minutes=index), children=2)
    rows = post(empty_sandbox, body).json()["data"]
    assert len(rows) == 2 and all(row["is_root"] for row in rows)


def test_range_conditions_on_ingestion_keys_keep_rows_inside_both_bounds(empty_sandbox):
    rows = [empty_sandbox.state.add_log(created=T0, output=index) for index in range(5)]
    low, high = rows[1]["_pagination_key"], rows[3]["_pagination_key"]
    assert outputs(post(empty_sandbox, sql(f"_pagination_key >= '{low}' AND _pagination_key < '{high}'"))) == [2, 1]
    low, high = rows[1]["_xact_id"], rows[3]["_xact_id"]
    assert outputs(post(empty_sandbox, sql(f"_xact_id > '{low}' AND _xact_id <= '{high}'"))) == [3, 2]


def test_created_keeps_rows_from_the_lower_bound_up_to_but_not_at_the_upper_bound(empty_sandbox):
    for minutes in (-1, 0, 30, 60):
        empty_sandbox.state.add_log(created=T0 + timedelta(minutes=minutes), output=minutes)
    reply = post(empty_sandbox, sql("created >= '2026-01-01T00:00:00Z' AND created < '2026-01-01T01:00:00Z'"))
    assert sorted(outputs(reply)) == [0, 30]


def test_a_row_stored_without_an_id_comes_without_an_id_key_and_paging_goes_past_it(empty_sandbox):
    empty_sandbox.state.add_log(id=None, created=T0, output="no id")
    empty_sandbox.state.add_log(created=T0, output="with id")
    rows = [row for reply in pages(empty_sandbox, "sql", limit=1) for row in reply.json()["data"]]
    assert sorted(row["output"] for row in rows) == ["no id", "with id"]
    assert sum("id" not in row for row in rows) == 1


def test_a_project_the_key_cannot_see_gets_403(empty_sandbox):
    assert post(empty_sandbox, structured(project=str(uuid.uuid4()))).status_code == 403


def test_btql_bodies_records_each_body_as_sent(empty_sandbox):
    bodies = [structured(limit=3), {**sql(), "cursor": "ignored"}]
    for body in bodies:
        post(empty_sandbox, body)
    assert empty_sandbox.btql_bodies() == bodies
