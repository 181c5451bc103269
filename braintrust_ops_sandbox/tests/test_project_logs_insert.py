"""POST /v1/project_logs/{project_id}/insert in the sandbox: the merge, replace and delete rules the OpenAPI
spec documents (InsertProjectLogsEvent), and tags united as the braintrust SDK's merge unites them."""

from datetime import UTC, datetime

import requests
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops_sandbox import BRAINTRUST_KEY, PROJECT_ID
from braintrust_ops_sandbox.log_merge import merged

AUTH = {"Authorization": f"Bearer {BRAINTRUST_KEY}"}
CREATED = datetime(2026, 11, 30, 12, tzinfo=UTC)


def insert(sandbox, events, project_id=PROJECT_ID) -> requests.Response:
    return requests.post(
        f"{sandbox.url}/v1/project_logs/{project_id}/insert", json={"events": events}, headers=AUTH, timeout=5
    )


def stored(sandbox, log_id):
    return next(row for row in sandbox.state.logs() if row["id"] == log_id)


def test_a_merge_adds_tags_beside_a_persons_and_keeps_every_other_field(empty_sandbox):
    log = empty_sandbox.state.add_log(
        created=CREATED, tags=["reviewed"], scores={"helpful": 1}, metadata={"user": "u1"}, input="q", output="a"
    )
    reply = insert(empty_sandbox, [{"id": log["id"], "_is_merge": True, "tags": ["halacha", "reviewed"]}])
    assert reply.status_code == 200 and reply.json() == {"row_ids": [log["id"]]}
    row = stored(empty_sandbox, log["id"])
    assert row["tags"] == ["reviewed", "halacha"]
    assert (row["scores"], row["metadata"], row["input"], row["output"]) == ({"helpful": 1}, {"user": "u1"}, "q", "a")


def test_array_delete_removes_only_the_named_tags(empty_sandbox):
    log = empty_sandbox.state.add_log(created=CREATED, tags=["halacha", "reviewed", "tanakh"])
    event = {"id": log["id"], "_is_merge": True, "_array_delete": [{"path": ["tags"], "delete": ["halacha", "x"]}]}
    insert(empty_sandbox, [event])
    assert stored(empty_sandbox, log["id"])["tags"] == ["reviewed", "tanakh"]


def test_a_merge_gives_the_log_a_new_xact_id_so_an_incremental_read_sees_it_again(empty_sandbox):
    log = empty_sandbox.state.add_log(created=CREATED)
    insert(empty_sandbox, [{"id": log["id"], "_is_merge": True, "tags": ["halacha"]}])
    assert int(stored(empty_sandbox, log["id"])["_xact_id"]) > int(log["_xact_id"])
    assert empty_sandbox.state.log_count() == 1


def test_without_is_merge_the_row_is_replaced_whole(empty_sandbox):
    log = empty_sandbox.state.add_log(created=CREATED, tags=["reviewed"], metadata={"user": "u1"})
    insert(empty_sandbox, [{"id": log["id"], "tags": ["halacha"]}])
    row = stored(empty_sandbox, log["id"])
    assert row["tags"] == ["halacha"] and row["metadata"] == {}


def test_object_delete_removes_the_log(empty_sandbox):
    log = empty_sandbox.state.add_log(created=CREATED)
    insert(empty_sandbox, [{"id": log["id"], "_object_delete": True}])
    assert empty_sandbox.state.log_count() == 0


def test_a_body_against_the_spec_gets_400_and_an_unknown_project_403(empty_sandbox):
    assert insert(empty_sandbox, [{"id": "x", "tags": "not-a-list"}]).status_code == 400
    assert insert(empty_sandbox, [], project_id="no-such-project").status_code == 403


def test_merge_paths_stop_the_merge_and_replace_tags_there():
    row = {"tags": ["a"], "metadata": {"x": {"y": 1}, "z": 2}}
    event = {"_is_merge": True, "_merge_paths": [["tags"], ["metadata", "x"]], "tags": ["b"], "metadata": {"x": {}}}
    assert merged(row, event) == {"tags": ["b"], "metadata": {"x": {}, "z": 2}}


tag_lists = st.lists(st.text(max_size=5), max_size=6)


@given(tag_lists, tag_lists, tag_lists)
def test_merged_tags_hold_every_stored_and_added_tag_except_the_deleted_ones_once_each(stored_tags, added, deleted):
    row = merged(
        {"tags": stored_tags},
        {"_is_merge": True, "tags": added, "_array_delete": [{"path": ["tags"], "delete": deleted}]},
    )
    assert set(row["tags"]) == (set(stored_tags) | set(added)) - set(deleted)
    assert len(row["tags"]) == len(set(row["tags"]))


def test_feedback_merges_scores_unites_tags_adds_the_comment_and_is_held_to_the_spec(empty_sandbox):
    log = empty_sandbox.state.add_log(created=CREATED, tags=["reviewed"], scores={"helpful": 1})
    item = {"id": log["id"], "tags": ["halacha"], "scores": {"accurate": 0.5}, "comment": "good", "source": "api"}
    reply = requests.post(
        f"{empty_sandbox.url}/v1/project_logs/{PROJECT_ID}/feedback", json={"feedback": [item]}, headers=AUTH, timeout=5
    )
    assert reply.status_code == 200 and reply.json() == {"status": "success"}
    row = stored(empty_sandbox, log["id"])
    assert row["tags"] == ["reviewed", "halacha"] and row["scores"] == {"helpful": 1, "accurate": 0.5}
    assert row["comments"] == [{"text": "good"}] and int(row["_xact_id"]) > int(log["_xact_id"])
    bad = requests.post(
        f"{empty_sandbox.url}/v1/project_logs/{PROJECT_ID}/feedback",
        json={"feedback": [{"id": log["id"], "source": "robot"}]},
        headers=AUTH,
        timeout=5,
    )
    assert bad.status_code == 400


def test_a_reviewer_sets_a_logs_tags_through_the_control_api_and_the_log_is_ingested_again(empty_sandbox):
    log = empty_sandbox.state.add_log(created=CREATED, tags=["halacha"], metadata={"session": "s"})
    body = {"tags": ["sources"], "reviewed_by": "Rivka"}
    reply = requests.put(f"{empty_sandbox.url}/_sandbox/logs/{log['id']}/tags", json=body, timeout=5)
    assert reply.status_code == 200
    row = stored(empty_sandbox, log["id"])
    assert row["tags"] == ["sources"] and row["metadata"] == {"session": "s", "reviewed_by": "Rivka"}
    assert int(row["_xact_id"]) > int(log["_xact_id"])
