from datetime import datetime, timedelta, timezone

import pytest

from braintrust_ops.clients.braintrust import BraintrustClient, build_logs_query
from braintrust_ops.exceptions import AuthenticationFailed, InvalidReply, ProjectNotFound, TransientServiceError
from braintrust_ops.sandbox import BRAINTRUST_KEY, OTHER_PROJECT_ID, PROJECT_ID

SINCE = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


def client_for(sandbox, **overrides):
    options = {"api_key": BRAINTRUST_KEY, "api_url": sandbox.url, "timeout": 5, "max_retries": 2, "backoff_seconds": 0}
    return BraintrustClient(**{**options, **overrides})


def test_logs_query_filters_on_project_time_window_and_root_spans():
    query = build_logs_query(
        project_id=PROJECT_ID, since=SINCE, until=SINCE + timedelta(days=1), root_only=True, limit=1000
    )
    assert query == (
        f"SELECT * FROM project_logs('{PROJECT_ID}') WHERE created >= '2026-11-23T02:00:00.000000Z' "
        "AND created < '2026-11-24T02:00:00.000000Z' AND is_root LIMIT 1000"
    )


def test_logs_query_for_a_backup_keeps_every_span():
    query = build_logs_query(project_id=PROJECT_ID, since=SINCE, until=None, root_only=False, limit=1000)
    assert "is_root" not in query and "created >= '2026-11-23T02:00:00.000000Z'" in query


def test_logs_query_refuses_a_naive_time():
    with pytest.raises(ValueError):
        build_logs_query(project_id=PROJECT_ID, since=datetime(2026, 11, 23), until=None, root_only=True, limit=10)


def test_tag_listing_follows_every_page(empty_sandbox):
    for index in range(250):
        empty_sandbox.state.add_tag(f"tag-{index:03d}", "dataset-tagging")
    tags = client_for(empty_sandbox).list_project_tags(PROJECT_ID)
    assert sorted(tag["name"] for tag in tags) == [f"tag-{index:03d}" for index in range(250)]
    assert empty_sandbox.count("project_tag") == 3


def test_listings_are_scoped_to_the_project(empty_sandbox):
    empty_sandbox.state.add_tag("mine", "dataset-tagging")
    empty_sandbox.state.add_tag("theirs", "dataset-tagging", project_id=OTHER_PROJECT_ID)
    empty_sandbox.state.add_dataset("mine", "")
    empty_sandbox.state.add_dataset("theirs", "", project_id=OTHER_PROJECT_ID)
    client = client_for(empty_sandbox)
    assert [tag["name"] for tag in client.list_project_tags(PROJECT_ID)] == ["mine"]
    assert [dataset["name"] for dataset in client.list_datasets(PROJECT_ID)] == ["mine"]


def test_empty_project_lists_nothing(empty_sandbox):
    assert client_for(empty_sandbox).list_project_tags(PROJECT_ID) == []


def test_log_pages_follow_the_cursor_until_every_row_is_read(empty_sandbox):
    empty_sandbox.state.add_logs(2345, created=lambda i: SINCE + timedelta(seconds=i + 1))
    pages = list(client_for(empty_sandbox).iter_log_pages(project_id=PROJECT_ID, since=SINCE))
    assert [len(page) for page in pages] == [1000, 1000, 345]
    ids = [row["id"] for page in pages for row in page]
    assert len(ids) == len(set(ids)) == 2345


def test_no_logs_in_range_yields_no_pages(empty_sandbox):
    assert list(client_for(empty_sandbox).iter_log_pages(project_id=PROJECT_ID, since=SINCE)) == []


def test_wrong_key_raises_authentication_failed_without_retrying(empty_sandbox):
    client = client_for(empty_sandbox, api_key="bt-wrong-key-for-tests-000000")
    with pytest.raises(AuthenticationFailed, match="BRAINTRUST_API_KEY"):
        list(client.iter_log_pages(project_id=PROJECT_ID, since=SINCE))
    assert empty_sandbox.count("btql") == 1


def test_forbidden_project_is_an_authentication_failure_naming_the_project_setting(empty_sandbox):
    client = client_for(empty_sandbox)
    with pytest.raises(AuthenticationFailed, match="BRAINTRUST_PROJECT_ID"):
        list(client.iter_log_pages(project_id="00000000-0000-4000-8000-000000000000", since=SINCE))


UNKNOWN_PROJECT = "00000000-0000-4000-8000-000000000000"


def test_get_project_returns_the_configured_project(empty_sandbox):
    project = client_for(empty_sandbox).get_project(PROJECT_ID)
    assert (project["id"], project["name"]) == (PROJECT_ID, "Sefaria chatbot")


@pytest.mark.parametrize("status", [403, 404])
def test_unknown_project_is_project_not_found_naming_the_id_and_the_setting(empty_sandbox, status):
    empty_sandbox.faults.add("project", "status", status=status, times=None)
    with pytest.raises(ProjectNotFound, match=rf"no project {PROJECT_ID} .*HTTP {status}.* Check BRAINTRUST_PROJECT_ID"):
        client_for(empty_sandbox).get_project(PROJECT_ID)
    assert empty_sandbox.count("project") == 1


def test_project_the_sandbox_does_not_know_is_refused_like_braintrust_does(empty_sandbox):
    with pytest.raises(ProjectNotFound, match="HTTP 403"):
        client_for(empty_sandbox).get_project(UNKNOWN_PROJECT)


def test_wrong_key_on_the_project_lookup_is_an_authentication_failure_not_a_missing_project(empty_sandbox):
    client = client_for(empty_sandbox, api_key="bt-wrong-key-for-tests-000000")
    with pytest.raises(AuthenticationFailed, match="BRAINTRUST_API_KEY") as raised:
        client.get_project(PROJECT_ID)
    assert not isinstance(raised.value, ProjectNotFound)


def test_project_reply_for_another_project_is_retried_then_reported(empty_sandbox):
    empty_sandbox.faults.add("project", "status", status=200, times=None)  # parses, but is no project
    with pytest.raises(InvalidReply, match=f"not project {PROJECT_ID}"):
        client_for(empty_sandbox).get_project(PROJECT_ID)
    assert empty_sandbox.count("project") == 3


def test_rate_limit_waits_for_retry_after_and_goes_on(empty_sandbox):
    empty_sandbox.state.add_logs(3, created=SINCE + timedelta(minutes=1))
    empty_sandbox.faults.add("btql", "status", status=429, retry_after=1, times=1)
    started = datetime.now()
    pages = list(client_for(empty_sandbox).iter_log_pages(project_id=PROJECT_ID, since=SINCE))
    assert sum(len(page) for page in pages) == 3
    assert (datetime.now() - started).total_seconds() >= 0.9
    assert empty_sandbox.count("btql") == 2


def test_garbled_reply_is_retried_then_reported(empty_sandbox):
    empty_sandbox.faults.add("btql", "invalid_json", times=None)
    with pytest.raises(InvalidReply, match="not JSON"):
        list(client_for(empty_sandbox).iter_log_pages(project_id=PROJECT_ID, since=SINCE))
    assert empty_sandbox.count("btql") == 3


def test_connection_refused_is_a_transient_error_naming_the_url():
    client = BraintrustClient(api_key="bt-unreachable-key-for-tests-0001", api_url="http://127.0.0.1:9", timeout=1, max_retries=1, backoff_seconds=0)
    with pytest.raises(TransientServiceError, match="could not connect after 2 attempts .*127.0.0.1:9"):
        client.list_project_tags(PROJECT_ID)


def test_insert_upserts_by_id_and_returns_confirmed_row_ids(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("d", "")
    client = client_for(empty_sandbox)
    events = [{"id": "row-1", "input": "a", "expected": "b"}, {"id": "row-2", "input": "c", "expected": "d"}]
    assert client.insert_dataset_events(dataset["id"], events) == ["row-1", "row-2"]
    client.insert_dataset_events(dataset["id"], [{"id": "row-1", "input": "a2", "expected": "b2"}])
    rows = {row["id"]: row["input"] for row in empty_sandbox.state.dataset_rows(dataset["id"])}
    assert rows == {"row-1": "a2", "row-2": "c"}


def test_dataset_events_are_read_page_by_page(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("d", "")
    client = client_for(empty_sandbox)
    client.insert_dataset_events(dataset["id"], [{"id": f"r{i}", "input": i} for i in range(25)])
    pages = list(client.iter_dataset_events(dataset["id"], page_size=10))
    assert [len(page) for page in pages] == [10, 10, 5]
