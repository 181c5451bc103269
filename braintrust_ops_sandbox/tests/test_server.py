"""The sandbox's Braintrust REST subset, checked over real HTTP with requests (BTQL: test_btql.py)."""

import uuid

import pytest
import requests

from braintrust_ops_sandbox import BRAINTRUST_KEY, OTHER_PROJECT_ID, PROJECT_ID

AUTH = {"Authorization": f"Bearer {BRAINTRUST_KEY}"}


def call(sandbox, method: str, path: str, headers=AUTH, **kwargs) -> requests.Response:
    return requests.request(method, sandbox.url + path, headers=headers, timeout=5, **kwargs)


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


def test_dataset_fetch_pages_newest_first_with_a_cursor_until_every_row_is_read(empty_sandbox):
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
    # OpenAPI FetchLimit: fetch pages "from latest to earliest _xact_id".
    assert sizes == [10, 10, 5] and ids == [f"r{index:02d}" for index in range(24, -1, -1)]


def test_dataset_fetch_with_a_cursor_it_did_not_issue_gets_400(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("evals", "")
    assert call(empty_sandbox, "POST", f"/v1/dataset/{dataset['id']}/fetch", json={"cursor": "!!"}).status_code == 400
