"""The sandbox's REST replies and request checks, held to Braintrust's OpenAPI spec (vendored in
braintrust_ops_sandbox/reference/): where the two disagree, the spec wins."""

import pytest
import requests

from braintrust_ops_sandbox import BRAINTRUST_KEY, PROJECT_ID, openapi

AUTH = {"Authorization": f"Bearer {BRAINTRUST_KEY}"}
INSERT = "/v1/dataset/{dataset_id}/insert"
FETCH = "/v1/dataset/{dataset_id}/fetch"
OWNED = {"id": PROJECT_ID, "project_id": PROJECT_ID}


def conforms(path: str, method: str, reply: requests.Response) -> None:
    assert reply.status_code == 200, reply.text
    error = openapi.first_error(openapi.response_pointer(path, method), reply.json())
    assert error is None, f"{method.upper()} {path}: {error}"


def dataset_id(sandbox) -> str:
    return sandbox.state.datasets(PROJECT_ID)[0]["id"]


def insert(sandbox, target: str, body: object) -> requests.Response:
    return requests.post(f"{sandbox.url}/v1/dataset/{target}/insert", headers=AUTH, json=body, timeout=5)


def test_get_project_replies_as_the_spec_says(sandbox):
    reply = requests.get(f"{sandbox.url}/v1/project/{PROJECT_ID}", headers=AUTH, timeout=5)
    conforms("/v1/project/{project_id}", "get", reply)


@pytest.mark.parametrize("path", ["/v1/project_tag", "/v1/dataset"])
def test_listings_reply_as_the_spec_says(sandbox, path):
    conforms(path, "get", requests.get(sandbox.url + path, headers=AUTH, params={"project_id": PROJECT_ID}, timeout=5))


def test_dataset_insert_replies_as_the_spec_says(sandbox):
    events = {"events": [{"id": "r1", "input": {"q": "?"}, "expected": "a", "metadata": {"k": 1}, "tags": ["t"]}, {}]}
    reply = insert(sandbox, dataset_id(sandbox), events)
    conforms(INSERT, "post", reply)


def test_dataset_fetch_replies_as_the_spec_says_on_every_page(sandbox):
    target = dataset_id(sandbox)
    events = {"events": [{"id": f"r{index}", "input": index, "origin": None} for index in range(3)]}
    insert(sandbox, target, events)
    body = {"limit": 2}
    for _ in range(2):
        reply = requests.post(f"{sandbox.url}/v1/dataset/{target}/fetch", headers=AUTH, json=body, timeout=5)
        conforms(FETCH, "post", reply)
        body["cursor"] = reply.json()["cursor"]
    assert body["cursor"] is None


@pytest.mark.parametrize(
    "events, where",
    [
        ([{"id": 5}], "events/0/id"),  # a wrong type
        ([{"tags": "halacha"}], "events/0/tags"),
        ([{"metadata": ["not", "an", "object"]}], "events/0/metadata"),
        ([{"_is_merge": "yes"}], "events/0/_is_merge"),
        ([{"origin": {"object_type": "log"}}], "events/0/origin"),  # a field whose value the spec does not allow
        ("not a list", "events"),
    ],
)
def test_an_insert_event_the_spec_does_not_allow_gets_400_naming_the_first_error(sandbox, events, where):
    target = dataset_id(sandbox)
    reply = insert(sandbox, target, {"events": events})
    assert reply.status_code == 400 and where in reply.json()["error"]
    assert sandbox.state.dataset_rows(target) == []


def test_an_insert_body_without_events_gets_400(sandbox):
    reply = insert(sandbox, dataset_id(sandbox), {})
    assert reply.status_code == 400 and "'events' is a required property" in reply.json()["error"]


def test_an_insert_event_with_a_field_the_spec_does_not_list_is_accepted_as_the_spec_allows(sandbox):
    # InsertDatasetEvent does not set additionalProperties: false, so the spec allows unknown fields.
    events = {"events": [{"id": "r1", "input": "q", "not_in_the_spec": 1}]}
    reply = insert(sandbox, dataset_id(sandbox), events)
    assert reply.status_code == 200


@pytest.mark.parametrize(
    "path, method, reply",
    [
        # What the sandbox answered before it was held to the spec: each must fail the check.
        ("/v1/project_tag", "get", {"objects": [{**OWNED, "name": "t", "user_id": "sandbox-user"}]}),  # not a UUID
        ("/v1/dataset", "get", {"objects": [{**OWNED, "name": "d"}]}),  # no url_slug
        (FETCH, "post", {"events": [{"id": "r1", "_xact_id": "1", "created": "2026-01-01T00:00:00Z"}]}),  # no span ids
        ("/v1/project_tag", "get", {"objects": [], "extra": 1}),
    ],
)
def test_the_contract_check_catches_replies_the_spec_does_not_allow(path, method, reply):
    assert openapi.first_error(openapi.response_pointer(path, method), reply) is not None
