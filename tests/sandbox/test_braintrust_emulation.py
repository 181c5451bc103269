"""The sandbox's Braintrust REST subset and BTQL, checked over real HTTP with requests."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from braintrust_ops.sandbox import BRAINTRUST_KEY, OTHER_PROJECT_ID, PROJECT_ID

AUTH = {"Authorization": f"Bearer {BRAINTRUST_KEY}"}
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def call(sandbox, method: str, path: str, headers=AUTH, **kwargs) -> requests.Response:
    return requests.request(method, sandbox.url + path, headers=headers, timeout=5, **kwargs)


def logs_query(project=PROJECT_ID, since=T0, until=None, root=False, limit=None) -> str:
    query = f"SELECT * FROM project_logs('{project}') WHERE created >= '{iso(since)}'"
    query += f" AND created < '{iso(until)}'" if until else ""
    query += " AND is_root" if root else ""
    return query + (f" LIMIT {limit}" if limit is not None else "")


def btql(sandbox, query: str, cursor=None) -> requests.Response:
    return call(sandbox, "POST", "/btql", json={"query": query, **({"cursor": cursor} if cursor else {})})


def all_pages(sandbox, query: str) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        reply = btql(sandbox, query, cursor).json()
        pages.append(reply["data"])
        if not (cursor := reply["cursor"]):
            return pages


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": BRAINTRUST_KEY}])
@pytest.mark.parametrize(
    "method, path",
    [("GET", "/v1/project_tag"), ("GET", "/v1/dataset"), ("POST", "/btql"), ("POST", "/v1/dataset/x/insert")],
)
def test_a_missing_or_wrong_bearer_key_gets_401(empty_sandbox, headers, method, path):
    assert call(empty_sandbox, method, path, headers=headers, json={}).status_code == 401


def test_listings_are_scoped_by_project_id_and_org_wide_without_it(empty_sandbox):
    for project, name in ((PROJECT_ID, "mine"), (OTHER_PROJECT_ID, "theirs")):
        empty_sandbox.state.add_tag(name, "", project_id=project)
        empty_sandbox.state.add_dataset(name, "", project_id=project)
    for path in ("/v1/project_tag", "/v1/dataset"):
        scoped = call(empty_sandbox, "GET", path, params={"project_id": PROJECT_ID}).json()["objects"]
        everything = call(empty_sandbox, "GET", path).json()["objects"]
        assert [item["name"] for item in scoped] == ["mine"]
        assert sorted(item["name"] for item in everything) == ["mine", "theirs"]


@pytest.mark.parametrize("path, add", [("/v1/project_tag", "add_tag"), ("/v1/dataset", "add_dataset")])
def test_listings_page_with_limit_and_starting_after(empty_sandbox, path, add):
    names = [f"item-{index}" for index in range(5)]
    for name in names:
        getattr(empty_sandbox.state, add)(name, "")
    pages, params = [], {"limit": 2}
    while objects := call(empty_sandbox, "GET", path, params=params).json()["objects"]:
        pages.append([item["name"] for item in objects])
        params = {"limit": 2, "starting_after": objects[-1]["id"]}
    assert pages == [names[0:2], names[2:4], names[4:5]]


@pytest.mark.parametrize("path", ["/v1/project_tag", "/v1/dataset"])
def test_a_project_id_that_is_not_a_uuid_gets_400(empty_sandbox, path):
    assert call(empty_sandbox, "GET", path, params={"project_id": "not-a-uuid"}).status_code == 400


def test_btql_pages_hold_at_most_1000_rows_in_created_then_id_order_and_the_cursor_reaches_every_row(empty_sandbox):
    empty_sandbox.state.add_logs(2500, created=lambda index: T0 + timedelta(seconds=index // 2))
    pages = all_pages(empty_sandbox, logs_query())
    rows = [row for page in pages for row in page]
    assert [len(page) for page in pages] == [1000, 1000, 500]
    assert [(row["created"], row["id"]) for row in rows] == sorted((row["created"], row["id"]) for row in rows)
    assert len({row["id"] for row in rows}) == 2500


def test_btql_cursor_is_repeated_in_the_x_bt_cursor_header_and_the_last_page_has_none(empty_sandbox):
    empty_sandbox.state.add_logs(3, created=lambda index: T0 + timedelta(minutes=index))
    first = btql(empty_sandbox, logs_query(limit=2))
    assert first.json()["cursor"] and first.headers["x-bt-cursor"] == first.json()["cursor"]
    last = btql(empty_sandbox, logs_query(limit=2), first.json()["cursor"])
    assert len(last.json()["data"]) == 1 and last.json()["cursor"] is None and "x-bt-cursor" not in last.headers


def test_btql_is_root_leaves_out_child_spans(empty_sandbox):
    for index in range(3):
        empty_sandbox.state.add_trace("q", "a", created=T0 + timedelta(minutes=index), children=2)
    roots = btql(empty_sandbox, logs_query(root=True)).json()["data"]
    assert len(roots) == 3 and all(row["is_root"] for row in roots)
    assert len(btql(empty_sandbox, logs_query()).json()["data"]) == 9


def test_btql_keeps_rows_from_created_since_up_to_but_not_at_the_until_bound(empty_sandbox):
    for minutes in (-1, 0, 30, 60):
        empty_sandbox.state.add_log(created=T0 + timedelta(minutes=minutes), output=minutes)
    rows = btql(empty_sandbox, logs_query(until=T0 + timedelta(minutes=60))).json()["data"]
    assert [row["output"] for row in rows] == [0, 30]


def test_btql_on_a_project_the_key_cannot_see_gets_403(empty_sandbox):
    assert btql(empty_sandbox, logs_query(project=str(uuid.uuid4()))).status_code == 403


@pytest.mark.parametrize(
    "query",
    [
        "SELECT id FROM logs",
        f"SELECT * FROM project_logs('{PROJECT_ID}') WHERE is_root",
        f"SELECT * FROM project_logs('{PROJECT_ID}') WHERE created >= '2026-01-01'",
        f"SELECT * FROM project_logs('{PROJECT_ID}') WHERE created >= '{iso(T0)}' AND score > 1",
    ],
)
def test_btql_refuses_a_malformed_query_or_one_without_a_created_lower_bound_with_400(empty_sandbox, query):
    assert btql(empty_sandbox, query).status_code == 400


def test_btql_returns_a_row_stored_without_an_id_without_an_id_key_and_pages_past_it(empty_sandbox):
    empty_sandbox.state.add_log(id=None, created=T0, output="no id")
    empty_sandbox.state.add_log(created=T0 + timedelta(seconds=1), output="with id")
    rows = [row for page in all_pages(empty_sandbox, logs_query(limit=1)) for row in page]
    assert [row["output"] for row in rows] == ["no id", "with id"]
    assert "id" not in rows[0] and "id" in rows[1]


def test_btql_limit_0_is_refused_with_400_rather_than_dropping_the_connection(empty_sandbox):
    empty_sandbox.state.add_log(created=T0)
    assert btql(empty_sandbox, logs_query(limit=0)).status_code == 400


def test_dataset_insert_returns_the_row_ids_it_stored(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("evals", "")
    reply = call(empty_sandbox, "POST", f"/v1/dataset/{dataset['id']}/insert", json={"events": [{"id": "r1"}, {}]})
    row_ids = reply.json()["row_ids"]
    assert row_ids[0] == "r1" and len(row_ids) == 2
    assert sorted(row["id"] for row in empty_sandbox.state.dataset_rows(dataset["id"])) == sorted(row_ids)


def test_dataset_insert_upserts_by_event_id_keeping_the_latest_content(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("evals", "")
    for answer in ("first", "second"):
        events = {"events": [{"id": "r1", "expected": answer}]}
        call(empty_sandbox, "POST", f"/v1/dataset/{dataset['id']}/insert", json=events)
    rows = empty_sandbox.state.dataset_rows(dataset["id"])
    assert [(row["id"], row["expected"]) for row in rows] == [("r1", "second")]


@pytest.mark.parametrize("action", ["insert", "fetch"])
def test_an_unknown_dataset_gets_404(empty_sandbox, action):
    assert call(empty_sandbox, "POST", f"/v1/dataset/{uuid.uuid4()}/{action}", json={"events": []}).status_code == 404


def test_dataset_fetch_pages_with_a_cursor_until_every_row_is_read(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("evals", "")
    empty_sandbox.state.insert_rows(dataset["id"], [{"id": f"r{index:02d}"} for index in range(25)])
    sizes, ids, body = [], [], {"limit": 10}
    while True:
        reply = call(empty_sandbox, "POST", f"/v1/dataset/{dataset['id']}/fetch", json=body).json()
        sizes.append(len(reply["events"]))
        ids += [event["id"] for event in reply["events"]]
        if not reply["cursor"]:
            break
        body = {"limit": 10, "cursor": reply["cursor"]}
    assert sizes == [10, 10, 5] and ids == [f"r{index:02d}" for index in range(25)]


def test_dataset_fetch_with_a_cursor_it_did_not_issue_gets_400(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("evals", "")
    assert call(empty_sandbox, "POST", f"/v1/dataset/{dataset['id']}/fetch", json={"cursor": "!!"}).status_code == 400
