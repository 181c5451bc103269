"""Putting a case together by hand over /_sandbox/: logs, tags, datasets and Claude's next replies."""

import json
import re
import shlex

import anthropic
import pytest
import requests

from braintrust_ops_sandbox import ANTHROPIC_KEY, BRAINTRUST_KEY, PROJECT_ID, server

AUTH = {"Authorization": f"Bearer {BRAINTRUST_KEY}"}


def control(sandbox, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox/{path}", timeout=5, **kwargs)


def listed(sandbox, path: str) -> list[str]:
    reply = requests.get(f"{sandbox.url}{path}", headers=AUTH, params={"project_id": PROJECT_ID}, timeout=5)
    return [item["name"] for item in reply.json()["objects"]]


def btql_rows(sandbox) -> list[dict]:
    query = f"SELECT * FROM project_logs('{PROJECT_ID}') WHERE created >= '2020-01-01T00:00:00Z'"
    return requests.post(f"{sandbox.url}/btql", headers=AUTH, json={"query": query}, timeout=5).json()["data"]


def ask(sandbox, text: str = "Is it Shabbat?"):
    tool = {
        "name": "record_tags",
        "input_schema": {"type": "object", "properties": {"tags": {"type": "array", "items": {"enum": ["halacha"]}}}},
    }
    return anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=sandbox.url, max_retries=0).messages.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": text}],
        tools=[tool],
        tool_choice={"type": "tool", "name": "record_tags"},
    )


# --- logs ---------------------------------------------------------------------------------------


def test_posted_logs_are_served_by_btql_with_their_id_created_and_fields(empty_sandbox):
    logs = [
        {"id": "log-1", "input": "Is coffee kosher?", "output": "Yes.", "created": "2026-11-24T10:00:00Z"},
        {"input": {"messages": ["q"]}, "output": None, "created": "2026-11-24T12:00:00+02:00", "tags": ["x"]},
    ]
    stored = control(empty_sandbox, "POST", "logs", json=logs)
    assert stored.status_code == 201
    rows = {row["id"]: row for row in btql_rows(empty_sandbox)}
    generated_id = stored.json()["logs"][1]["id"]
    assert sorted(rows) == sorted(["log-1", generated_id])
    assert (rows["log-1"]["input"], rows["log-1"]["output"]) == ("Is coffee kosher?", "Yes.")
    assert (rows[generated_id]["input"], rows[generated_id]["tags"]) == ({"messages": ["q"]}, ["x"])
    # Both times are 10:00 UTC, stored as Braintrust writes them.
    assert {row["created"] for row in rows.values()} == {"2026-11-24T10:00:00.000000Z"}
    assert all(row["is_root"] for row in rows.values())


def test_get_lists_and_delete_clears_the_logs(empty_sandbox):
    control(empty_sandbox, "POST", "logs", json={"input": "a", "output": "b", "created": "2026-11-24T10:00:00Z"})
    assert [log["input"] for log in control(empty_sandbox, "GET", "logs").json()["logs"]] == ["a"]
    assert control(empty_sandbox, "DELETE", "logs").json() == {"logs": []}
    assert btql_rows(empty_sandbox) == [] and empty_sandbox.state.log_count() == 0


@pytest.mark.parametrize(
    "body", [[{"input": "a", "created": "yesterday"}], [{"input": "a", "created": 1700000000}], [], ["a log"], "x"]
)
def test_a_log_that_cannot_be_stored_gets_400_and_nothing_is_added(empty_sandbox, body):
    reply = control(empty_sandbox, "POST", "logs", json=body)
    assert reply.status_code == 400 and "error" in reply.json()
    assert empty_sandbox.state.log_count() == 0


# --- tags and datasets --------------------------------------------------------------------------


@pytest.mark.parametrize("kind, path", [("tags", "/v1/project_tag"), ("datasets", "/v1/dataset")])
def test_posted_tags_and_datasets_are_listed_by_the_api_and_delete_clears_them(empty_sandbox, kind, path):
    one = control(empty_sandbox, "POST", kind, json={"name": "halacha", "description": "dataset-tagging"})
    assert one.status_code == 201 and one.json()[kind][0]["description"] == "dataset-tagging"
    control(empty_sandbox, "POST", kind, json=[{"name": "sources", "description": None}])
    assert listed(empty_sandbox, path) == ["halacha", "sources"]
    assert [item["name"] for item in control(empty_sandbox, "GET", kind).json()[kind]] == ["halacha", "sources"]
    assert control(empty_sandbox, "DELETE", kind).json() == {kind: []}
    assert listed(empty_sandbox, path) == []


def test_a_posted_dataset_takes_inserts(empty_sandbox):
    dataset = control(empty_sandbox, "POST", "datasets", json={"name": "evals", "description": ""}).json()
    dataset_id = dataset["datasets"][0]["id"]
    events = {"events": [{"id": "r1", "input": "q"}]}
    url = f"{empty_sandbox.url}/v1/dataset/{dataset_id}/insert"
    inserted = requests.post(url, headers=AUTH, json=events, timeout=5)
    assert inserted.json() == {"row_ids": ["r1"]}


@pytest.mark.parametrize("kind", ["tags", "datasets"])
@pytest.mark.parametrize("body", [{"description": "no name"}, {"name": ""}, [{"name": "ok"}, {"name": 7}]])
def test_a_tag_or_dataset_without_a_name_gets_400(empty_sandbox, kind, body):
    assert control(empty_sandbox, "POST", kind, json=body).status_code == 400
    assert control(empty_sandbox, "GET", kind).json() == {kind: []}


def test_a_dataset_with_a_field_the_sandbox_does_not_keep_gets_400(empty_sandbox):
    assert control(empty_sandbox, "POST", "datasets", json={"name": "x", "colour": "red"}).status_code == 400


# --- Claude's next replies ----------------------------------------------------------------------


def test_scripted_replies_play_once_each_in_order_then_the_rule_resumes(empty_sandbox):
    replies = [{"tool_input": {"tags": ["nope"]}}, {"text": "I will not call the tool.", "stop_reason": "end_turn"}]
    assert control(empty_sandbox, "POST", "claude_replies", json=replies).json() == {"claude_replies": 2}
    first, second, third = (ask(empty_sandbox) for _ in range(3))
    assert first.content[0].input == {"tags": ["nope"]}
    assert (second.content[0].text, second.stop_reason) == ("I will not call the tool.", "end_turn")
    assert third.content[0].input == {"tags": ["halacha"]}


def test_delete_claude_replies_drops_the_script(empty_sandbox):
    control(empty_sandbox, "POST", "claude_replies", json=[{"text": "scripted"}])
    assert control(empty_sandbox, "GET", "claude_replies").json() == {"claude_replies": 1}
    assert control(empty_sandbox, "DELETE", "claude_replies").json() == {"claude_replies": 0}
    assert ask(empty_sandbox).content[0].type == "tool_use"


@pytest.mark.parametrize(
    "replies",
    [
        [{"tool_input": {}, "text": "both"}],
        [{"stop_reason": "end_turn"}],
        [{"text": 42}],
        [{"tool_input": {}, "reason": "typo"}],
        [{"text": "fine"}, "not an object"],
    ],
)
def test_a_reply_in_no_known_shape_gets_400_and_none_is_queued(empty_sandbox, replies):
    assert control(empty_sandbox, "POST", "claude_replies", json=replies).status_code == 400
    assert len(empty_sandbox.claude_replies) == 0


# --- the documented example ---------------------------------------------------------------------


def test_the_curl_example_in_the_server_docstring_works(empty_sandbox):
    """Runs the docstring's curl lines (as requests) so the documentation cannot drift from the API."""
    text = server.__doc__.replace("\\\n", " ")
    commands = [shlex.split(line) for line in text.splitlines() if line.strip().startswith("curl ")]
    assert len(commands) == 3
    for command in commands:
        method = command[command.index("-X") + 1]
        url = next(part for part in command if part.startswith("http://"))
        path = re.sub(r"^http://[^/]+/_sandbox/", "", url)
        body = json.loads(command[command.index("-d") + 1])
        assert control(empty_sandbox, method, path, json=body).status_code == 201
    assert listed(empty_sandbox, "/v1/project_tag") == ["halacha"]
    assert [row["id"] for row in btql_rows(empty_sandbox)] == ["log-1"]
    assert ask(empty_sandbox, "Is coffee kosher?").content[0].input == {"tags": ["nope"]}
