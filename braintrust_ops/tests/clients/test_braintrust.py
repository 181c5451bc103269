"""The Braintrust client against the sandbox: listings, the project, BTQL paging as documented, inserts."""

from datetime import UTC, datetime, timedelta

import pytest

from braintrust_ops.clients import braintrust as braintrust_module
from braintrust_ops.clients.braintrust import BTQL_TIMEOUT_FACTOR, FIRST_PAGE_ROWS, BraintrustClient, RequestTooLarge
from braintrust_ops.conf import OpsConfig
from braintrust_ops.exceptions import AuthenticationFailed, InvalidReply, PermanentServiceError, ProjectNotFound
from braintrust_ops_sandbox import BRAINTRUST_KEY, OTHER_PROJECT_ID, PROJECT_ID

SINCE = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
UNKNOWN_PROJECT = "00000000-0000-4000-8000-000000000000"


def client_for(sandbox, **overrides):
    options = {"api_key": BRAINTRUST_KEY, "api_url": sandbox.url, "timeout": 5, "max_retries": 2, "backoff_seconds": 0}
    return BraintrustClient(**{**options, **overrides})


def read_all(client, **options) -> list[list[dict]]:
    return list(client.log_pages(project_id=PROJECT_ID, since=SINCE, **options))


# --- listings and the project -----------------------------------------------------------------


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


def test_get_project_returns_the_configured_project(empty_sandbox):
    project = client_for(empty_sandbox).get_project(PROJECT_ID)
    assert (project["id"], project["name"]) == (PROJECT_ID, "Sefaria chatbot")


@pytest.mark.parametrize("status", [403, 404])
def test_unknown_project_is_project_not_found_naming_the_id_and_the_setting(empty_sandbox, status):
    empty_sandbox.faults.add("project", "status", status=status, times=None)
    with pytest.raises(
        ProjectNotFound, match=rf"no project {PROJECT_ID} .*HTTP {status}.* Check BRAINTRUST_PROJECT_ID"
    ):
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


def test_a_project_reply_naming_another_project_is_an_invalid_reply(empty_sandbox):
    empty_sandbox.faults.add("project", "status", status=200, times=None)  # parses, but is no project
    with pytest.raises(InvalidReply, match=f"not project {PROJECT_ID}"):
        client_for(empty_sandbox).get_project(PROJECT_ID)


# --- BTQL paging, as documented ---------------------------------------------------------------


def test_log_pages_follow_the_cursor_until_every_row_is_read(empty_sandbox):
    empty_sandbox.state.add_logs(2345, created=lambda i: SINCE + timedelta(seconds=i + 1))
    pages = read_all(client_for(empty_sandbox))
    ids = [row["id"] for page in pages for row in page]
    assert len(ids) == len(set(ids)) == 2345
    assert [len(page) for page in pages] == [FIRST_PAGE_ROWS, 1000, 1000, 245]


def test_the_cursor_travels_inside_the_query_never_as_a_top_level_field(empty_sandbox):
    empty_sandbox.state.add_logs(150, created=SINCE + timedelta(minutes=1))
    read_all(client_for(empty_sandbox))
    bodies = empty_sandbox.btql_bodies()
    assert all(set(body) == {"query", "fmt", "brainstore_realtime"} for body in bodies)
    assert [body["query"]["cursor"] is None for body in bodies] == [True, False, False]


def test_a_server_that_ignores_the_cursor_is_caught_not_read_forever(empty_sandbox, monkeypatch):
    """The last round's bug, as the real service answered it: a cursor it does not see gives page 1 again."""
    original = braintrust_module.logs_query
    monkeypatch.setattr(braintrust_module, "logs_query", lambda **kw: original(**{**kw, "cursor": None}))
    empty_sandbox.state.add_logs(150, created=SINCE + timedelta(minutes=1))
    with pytest.raises(InvalidReply, match="same BTQL cursor twice"):
        read_all(client_for(empty_sandbox))


def test_paging_ends_on_the_empty_page_when_every_page_carries_a_cursor(empty_sandbox):
    empty_sandbox.state.add_logs(30, created=SINCE + timedelta(minutes=1))
    assert sum(map(len, read_all(client_for(empty_sandbox)))) == 30
    assert empty_sandbox.count("btql") == 2  # the page of 30 carried a cursor; the empty page did not


def test_paging_ends_on_a_short_last_page_without_a_cursor(empty_sandbox):
    empty_sandbox.btql_cursor_on_last_page = False
    empty_sandbox.state.add_logs(130, created=SINCE + timedelta(minutes=1))
    assert sum(map(len, read_all(client_for(empty_sandbox)))) == 130
    assert empty_sandbox.count("btql") == 2


def test_the_cursor_is_read_from_the_x_bt_cursor_header_when_the_body_has_none(empty_sandbox, monkeypatch):
    empty_sandbox.state.add_logs(150, created=SINCE + timedelta(minutes=1))
    client = client_for(empty_sandbox)
    original = client._post_btql

    def body_without_cursor(body):
        response = original(body)
        reply = response.json()  # parsed once by the session: the parse, not the bytes, is what the client reads
        reply["cursor_elsewhere"] = reply.pop("cursor", None)
        return response

    monkeypatch.setattr(client, "_post_btql", body_without_cursor)
    assert sum(map(len, read_all(client))) == 150


def test_btql_asks_for_logs_not_yet_indexed_as_the_sdk_does(empty_sandbox):
    """braintrust's ObjectFetcher._refetch sends brainstore_realtime (True by default) with every page."""
    empty_sandbox.state.add_logs(3, created=SINCE + timedelta(minutes=1))
    read_all(client_for(empty_sandbox))
    assert [body["brainstore_realtime"] for body in empty_sandbox.btql_bodies()] == [True, True]


def test_an_empty_page_that_carries_a_cursor_is_not_the_end(empty_sandbox, monkeypatch):
    """The SDK stops only on a page without a cursor: an empty page with one is followed."""
    empty_sandbox.state.add_logs(150, created=SINCE + timedelta(minutes=1))
    client = client_for(empty_sandbox)
    original = client.btql
    calls = []

    def first_page_empty(query):
        rows, cursor, size = original(query)
        calls.append(len(rows))
        return ([] if len(calls) == 1 else rows), cursor, size

    monkeypatch.setattr(client, "btql", first_page_empty)
    assert sum(map(len, read_all(client))) == 150 - FIRST_PAGE_ROWS


def test_the_cursor_is_read_from_the_x_amz_meta_bt_cursor_header_too(empty_sandbox, monkeypatch):
    empty_sandbox.state.add_logs(150, created=SINCE + timedelta(minutes=1))
    client = client_for(empty_sandbox)
    original = client._post_btql

    def cursor_in_the_amz_header(body):
        response = original(body)
        reply = response.json()  # parsed once by the session: the parse is what the client reads
        reply["cursor_elsewhere"] = reply.pop("cursor", None)
        cursor = response.headers.pop("x-bt-cursor", None)
        if cursor:
            response.headers["x-amz-meta-bt_cursor"] = cursor
        return response

    monkeypatch.setattr(client, "_post_btql", cursor_in_the_amz_header)
    assert sum(map(len, read_all(client))) == 150


def test_btql_waits_longer_than_the_other_routes_so_a_slow_query_is_not_sent_again(empty_sandbox):
    """The server gives a BTQL query 30 s; a client giving up at the same 30 s sends it again and again."""
    assert BraintrustClient.from_config(OpsConfig(braintrust_api_key="k")).btql_timeout == 45.0
    empty_sandbox.state.add_logs(3, created=SINCE + timedelta(minutes=1))
    empty_sandbox.faults.add("btql", "latency", delay=0.6, times=1)
    client = client_for(empty_sandbox, timeout=0.5, btql_timeout=0.5 * BTQL_TIMEOUT_FACTOR)
    assert sum(map(len, read_all(client))) == 3
    assert empty_sandbox.count("btql") == 2  # the page and the empty page that ends: none sent twice


def test_rows_repeated_on_a_later_page_are_dropped_by_id_and_counted(empty_sandbox, monkeypatch):
    empty_sandbox.state.add_logs(150, created=SINCE + timedelta(minutes=1))
    client = client_for(empty_sandbox)
    original = client.btql
    first_row = []

    def repeat_first_row(query):
        rows, cursor, size = original(query)
        if not first_row:
            first_row.extend(rows[:1])
        elif rows:
            rows = rows + first_row
        return rows, cursor, size

    monkeypatch.setattr(client, "btql", repeat_first_row)
    pages = client.log_pages(project_id=PROJECT_ID, since=SINCE)
    ids = [row["id"] for page in pages for row in page]
    assert len(ids) == len(set(ids)) == 150 and pages.duplicates == 1


def test_pages_get_smaller_when_rows_are_big_so_memory_follows_bytes(empty_sandbox):
    empty_sandbox.state.add_logs(300, created=SINCE + timedelta(minutes=1), input="x" * 40_000)
    pages = read_all(client_for(empty_sandbox, btql_page_bytes=1_000_000))
    limits = [body["query"]["limit"] for body in empty_sandbox.btql_bodies()]
    assert limits[0] == FIRST_PAGE_ROWS and max(limits[1:]) <= 25  # 1 MB / ~40 KB a row
    assert sum(map(len, pages)) == 300


def test_the_watermark_asks_only_for_logs_ingested_after_it_whatever_their_created_time(empty_sandbox):
    empty_sandbox.state.add_log(id="seen", created=SINCE + timedelta(hours=5))
    watermark = empty_sandbox.state.logs()[-1]["_xact_id"]
    empty_sandbox.state.add_log(id="flushed-late", created=SINCE + timedelta(hours=1))
    rows = [row for page in read_all(client_for(empty_sandbox), after_xact_id=watermark) for row in page]
    assert [row["id"] for row in rows] == ["flushed-late"]


def test_no_logs_in_range_yields_no_pages(empty_sandbox):
    assert read_all(client_for(empty_sandbox)) == []


def test_wrong_key_raises_authentication_failed_without_retrying(empty_sandbox):
    client = client_for(empty_sandbox, api_key="bt-wrong-key-for-tests-000000")
    with pytest.raises(AuthenticationFailed, match="BRAINTRUST_API_KEY"):
        read_all(client)
    assert empty_sandbox.count("btql") == 1


def test_forbidden_project_is_an_authentication_failure_naming_the_project_setting(empty_sandbox):
    client = client_for(empty_sandbox)
    with pytest.raises(AuthenticationFailed, match="BRAINTRUST_PROJECT_ID"):
        list(client.log_pages(project_id=UNKNOWN_PROJECT, since=SINCE))


def test_garbled_reply_is_retried_then_reported(empty_sandbox):
    empty_sandbox.faults.add("btql", "invalid_json", times=None)
    with pytest.raises(InvalidReply, match="not JSON after 3 attempts"):
        read_all(client_for(empty_sandbox))
    assert empty_sandbox.count("btql") == 3


def test_a_page_cut_off_mid_body_is_retried_and_the_read_completes(empty_sandbox):
    empty_sandbox.state.add_logs(150, created=SINCE + timedelta(minutes=1))
    empty_sandbox.faults.add("btql", "partial", times=2)
    assert sum(map(len, read_all(client_for(empty_sandbox)))) == 150


def test_a_page_always_cut_off_fails_saying_so_with_the_real_attempts(empty_sandbox):
    empty_sandbox.state.add_logs(10, created=SINCE + timedelta(minutes=1))
    empty_sandbox.faults.add("btql", "partial", times=None)
    with pytest.raises(Exception, match="cut off mid-reply after 3 attempts"):
        read_all(client_for(empty_sandbox))
    assert empty_sandbox.count("btql") == 3


# --- datasets ---------------------------------------------------------------------------------


def test_insert_upserts_by_id_and_returns_confirmed_row_ids(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("d", "")
    client = client_for(empty_sandbox)
    events = [{"id": "row-1", "input": "a", "expected": "b"}, {"id": "row-2", "input": "c", "expected": "d"}]
    assert client.insert_dataset_events(dataset["id"], events) == ["row-1", "row-2"]
    client.insert_dataset_events(dataset["id"], [{"id": "row-1", "input": "a2", "expected": "b2"}])
    rows = {row["id"]: row["input"] for row in empty_sandbox.state.dataset_rows(dataset["id"])}
    assert rows == {"row-1": "a2", "row-2": "c"}


def test_an_insert_refused_as_too_large_is_request_too_large_at_once_carrying_its_status(empty_sandbox):
    """Apart from other refusals, so the push can judge a row the dataset will never take at once."""
    dataset = empty_sandbox.state.add_dataset("d", "")
    empty_sandbox.set_request_size_limit("dataset_insert", 200)
    with pytest.raises(RequestTooLarge) as raised:
        client_for(empty_sandbox).insert_dataset_events(dataset["id"], [{"id": "row-1", "input": "x" * 300}])
    assert raised.value.status == 413 and isinstance(raised.value, PermanentServiceError)
    assert str(raised.value).startswith(
        "Braintrust refused POST /v1/dataset/{id}/insert as too large (HTTP 413): this deployment takes smaller "
        "requests; lower BRAINTRUST_OPS_PUSH_MAX_REQUEST_BYTES, then run again. Braintrust said: "
    )
    assert empty_sandbox.count("dataset_insert") == 1  # the same bytes would be refused again


def test_dataset_events_are_read_page_by_page(empty_sandbox):
    dataset = empty_sandbox.state.add_dataset("d", "")
    client = client_for(empty_sandbox)
    client.insert_dataset_events(dataset["id"], [{"id": f"r{i}", "input": i} for i in range(25)])
    pages = list(client.iter_dataset_events(dataset["id"], page_size=10))
    assert [len(page) for page in pages] == [10, 10, 5]


def test_a_row_nested_past_the_parsers_depth_is_stepped_over_and_the_rest_is_read(empty_sandbox):
    from braintrust_ops_sandbox.state import RawJSON

    empty_sandbox.state.add_logs(60, created=SINCE + timedelta(minutes=1))
    empty_sandbox.state.add_log(
        id="too-deep", created=SINCE + timedelta(minutes=2), input=RawJSON("[" * 5000 + "]" * 5000)
    )
    empty_sandbox.state.add_logs(60, created=SINCE + timedelta(minutes=3))
    pages = client_for(empty_sandbox).log_pages(project_id=PROJECT_ID, since=SINCE)
    ids = [row["id"] for page in pages for row in page]
    assert len(set(ids)) == 120 and "too-deep" not in ids
    assert pages.unreadable == 1


@pytest.mark.parametrize(
    "route, status, call, advice",
    [
        ("project", 400, lambda c: c.get_project(PROJECT_ID), "check BRAINTRUST_PROJECT_ID"),
        ("project_tag", 400, lambda c: c.list_project_tags(PROJECT_ID), "check BRAINTRUST_PROJECT_ID"),
        ("project_tag", 404, lambda c: c.list_project_tags(PROJECT_ID), "check BRAINTRUST_API_URL"),
        ("dataset_list", 400, lambda c: c.list_datasets(PROJECT_ID), "check BRAINTRUST_PROJECT_ID"),
        ("dataset_list", 404, lambda c: c.list_datasets(PROJECT_ID), "check BRAINTRUST_API_URL"),
        ("btql", 400, lambda c: list(c.log_pages(project_id=PROJECT_ID, since=SINCE)), "check BRAINTRUST_PROJECT_ID"),
        ("btql", 404, lambda c: list(c.log_pages(project_id=PROJECT_ID, since=SINCE)), "check BRAINTRUST_API_URL"),
        ("dataset_fetch", 400, lambda c: list(c.iter_dataset_events("d")), "check BRAINTRUST_API_URL"),
        ("dataset_fetch", 404, lambda c: list(c.iter_dataset_events("d")), "check the project's datasets"),
    ],
)
def test_a_request_refused_for_good_says_what_to_do_in_one_line(empty_sandbox, route, status, call, advice):
    empty_sandbox.faults.add(route, "status", status=status, times=None)
    with pytest.raises(PermanentServiceError) as raised:
        call(client_for(empty_sandbox))
    message = str(raised.value)
    assert f"HTTP {status}; " in message and advice in message and "run again" in message and "\n" not in message


# --- writes to the source logs ------------------------------------------------------------------


def test_merged_tags_join_the_logs_own_and_nothing_else_on_it_changes(empty_sandbox):
    log = empty_sandbox.state.add_log(created=SINCE, tags=["reviewed"], scores={"helpful": 1}, metadata={"u": 1})
    event = {"id": log["id"], "_is_merge": True, "tags": ["halacha"]}
    assert client_for(empty_sandbox).merge_log_events(PROJECT_ID, [event]) == [log["id"]]
    (row,) = empty_sandbox.state.logs()
    assert (row["tags"], row["scores"], row["metadata"]) == (["reviewed", "halacha"], {"helpful": 1}, {"u": 1})


def test_a_write_that_would_replace_a_source_log_is_refused_before_it_is_sent(empty_sandbox):
    with pytest.raises(ValueError, match="must be a merge"):
        client_for(empty_sandbox).merge_log_events(PROJECT_ID, [{"id": "log-1", "tags": ["halacha"]}])
    assert empty_sandbox.count("project_logs_insert") == 0


def test_a_log_write_that_fails_once_is_retried_and_one_refused_for_good_says_what_to_do(empty_sandbox):
    log = empty_sandbox.state.add_log(created=SINCE)
    event = {"id": log["id"], "_is_merge": True, "tags": ["halacha"]}
    empty_sandbox.faults.add("project_logs_insert", "status", status=503, times=1)
    assert client_for(empty_sandbox).merge_log_events(PROJECT_ID, [event]) == [log["id"]]
    empty_sandbox.faults.add("project_logs_insert", "status", status=400, times=None)
    with pytest.raises(PermanentServiceError) as raised:
        client_for(empty_sandbox).merge_log_events(PROJECT_ID, [event])
    assert "HTTP 400; " in str(raised.value) and "\n" not in str(raised.value)


def test_a_reply_that_confirms_fewer_log_writes_than_sent_is_an_invalid_reply(empty_sandbox, monkeypatch):
    log = empty_sandbox.state.add_log(created=SINCE)
    monkeypatch.setattr(empty_sandbox.state, "insert_logs", lambda project_id, events: [])
    with pytest.raises(InvalidReply, match="did not confirm the 1 log updates"):
        client_for(empty_sandbox).merge_log_events(PROJECT_ID, [{"id": log["id"], "_is_merge": True, "tags": []}])
