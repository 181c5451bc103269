"""BraintrustClient's experiments against the sandbox: create, list, insert, summarize, and their failures."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.clients.braintrust import LIST_PAGE_SIZE, BraintrustClient
from braintrust_ops.exceptions import (
    AuthenticationFailed,
    InvalidReply,
    PermanentServiceError,
    TransientServiceError,
)
from braintrust_ops_sandbox import BRAINTRUST_KEY, OTHER_PROJECT_ID, PROJECT_ID

UNKNOWN_PROJECT = "00000000-0000-4000-8000-000000000000"
UNKNOWN_EXPERIMENT = "11111111-1111-4111-8111-111111111111"


def client_for(sandbox, **overrides) -> BraintrustClient:
    options = {"api_key": BRAINTRUST_KEY, "api_url": sandbox.url, "timeout": 5, "max_retries": 2, "backoff_seconds": 0}
    return BraintrustClient(**{**options, **overrides})


def events(pairs: list[tuple[str, float]]) -> list[dict]:
    return [{"id": f"row-{log}", "input": {"log": log}, "scores": {"agreement": value}} for log, value in pairs]


# --- create and list ----------------------------------------------------------------------------


def test_create_experiment_returns_the_stored_experiment_with_its_description_base_and_metadata(empty_sandbox):
    client = client_for(empty_sandbox)
    base = client.create_experiment(PROJECT_ID, name="baseline")
    experiment = client.create_experiment(
        PROJECT_ID, name="claude vs people", description="weekly", base_experiment_id=base["id"], metadata={"n": 3}
    )
    stored = empty_sandbox.state.experiments()[-1]
    assert (stored["id"], stored["name"]) == (experiment["id"], "claude vs people")
    assert (stored["description"], stored["base_exp_id"], stored["metadata"]) == ("weekly", base["id"], {"n": 3})


def test_a_name_already_taken_gets_a_new_experiment_under_another_name_not_the_old_one(empty_sandbox):
    client = client_for(empty_sandbox)
    first = client.create_experiment(PROJECT_ID, name="tagging")
    second = client.create_experiment(PROJECT_ID, name="tagging")
    assert first["id"] != second["id"] and first["name"] != second["name"]
    assert len(empty_sandbox.state.experiments()) == 2


def test_creating_in_a_project_the_key_cannot_reach_says_which_setting_to_check_in_one_line(empty_sandbox):
    with pytest.raises(AuthenticationFailed, match="POST /v1/experiment .*HTTP 403.*BRAINTRUST_PROJECT_ID") as raised:
        client_for(empty_sandbox).create_experiment(UNKNOWN_PROJECT, name="x")
    assert "\n" not in str(raised.value)
    assert empty_sandbox.count("experiment_create") == 1


def test_list_experiments_reads_every_page_of_the_project_newest_first(empty_sandbox):
    client = client_for(empty_sandbox)
    store = empty_sandbox.state.experiment_store
    ids = [store.create({"project_id": PROJECT_ID, "name": f"e{index}"})["id"] for index in range(LIST_PAGE_SIZE + 30)]
    store.create({"project_id": OTHER_PROJECT_ID, "name": "theirs"})
    assert [experiment["id"] for experiment in client.list_experiments(PROJECT_ID)] == ids[::-1]
    assert empty_sandbox.count("experiment_list") == 2


# --- insert -------------------------------------------------------------------------------------


def test_inserted_events_are_stored_and_their_confirmed_row_ids_returned(empty_sandbox):
    client = client_for(empty_sandbox)
    experiment = client.create_experiment(PROJECT_ID, name="e")
    assert client.insert_experiment_events(experiment["id"], events([("a", 1), ("b", 0)])) == ["row-a", "row-b"]
    stored = empty_sandbox.state.experiments()[0]["events"]
    assert [(event["id"], event["scores"]) for event in stored] == [
        ("row-a", {"agreement": 1}),
        ("row-b", {"agreement": 0}),
    ]


def test_a_reply_that_confirms_no_rows_is_an_invalid_reply(empty_sandbox):
    client = client_for(empty_sandbox)
    experiment = client.create_experiment(PROJECT_ID, name="e")
    empty_sandbox.faults.add("experiment_insert", "status", status=200)  # parses, but has no row_ids
    with pytest.raises(InvalidReply, match=f"did not confirm the 1 events sent to experiment {experiment['id']}"):
        client.insert_experiment_events(experiment["id"], events([("a", 1)]))


# --- summarize ----------------------------------------------------------------------------------


def test_the_summary_compares_the_scores_with_the_base_experiment(empty_sandbox):
    client = client_for(empty_sandbox)
    base = client.create_experiment(PROJECT_ID, name="last week")
    client.insert_experiment_events(base["id"], events([("a", 0), ("b", 1)]))
    experiment = client.create_experiment(PROJECT_ID, name="this week", base_experiment_id=base["id"])
    client.insert_experiment_events(experiment["id"], events([("a", 1), ("b", 1)]))
    summary = client.summarize_experiment(experiment["id"])
    assert summary["comparison_experiment_name"] == "last week"
    assert summary["scores"]["agreement"] == {
        "name": "agreement",
        "score": 1,
        "diff": 0.5,
        "improvements": 1,
        "regressions": 0,
    }
    assert summary["experiment_url"].endswith("/experiments/this%20week")
    assert summary["metrics"] == {}


def test_the_summary_compares_with_the_experiment_asked_for(empty_sandbox):
    client = client_for(empty_sandbox)
    chosen = client.create_experiment(PROJECT_ID, name="chosen")
    client.insert_experiment_events(chosen["id"], events([("a", 1)]))
    client.create_experiment(PROJECT_ID, name="newer")
    experiment = client.create_experiment(PROJECT_ID, name="now")
    client.insert_experiment_events(experiment["id"], events([("a", 0)]))
    summary = client.summarize_experiment(experiment["id"], comparison_experiment_id=chosen["id"])
    assert summary["comparison_experiment_name"] == "chosen"
    assert (summary["scores"]["agreement"]["diff"], summary["scores"]["agreement"]["regressions"]) == (-1, 1)


def test_a_summary_reply_without_the_experiments_names_is_an_invalid_reply(empty_sandbox):
    client = client_for(empty_sandbox)
    experiment = client.create_experiment(PROJECT_ID, name="e")
    empty_sandbox.faults.add("experiment_summarize", "status", status=200)
    with pytest.raises(InvalidReply, match="not an experiment summary"):
        client.summarize_experiment(experiment["id"])


VALID_SUMMARY = {
    "project_name": "p",
    "experiment_name": "e",
    "project_url": "http://x/p",
    "experiment_url": "http://x/p/experiments/e",
    "scores": {"agreement": {"name": "agreement", "score": 0.5, "improvements": 0, "regressions": 0}},
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["score", "name", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)
# A valid summary with some of its fields replaced by any JSON: the success path and every way to leave it.
summary_replies = st.builds(
    lambda overrides: {**VALID_SUMMARY, **overrides},
    st.dictionaries(
        st.sampled_from([*VALID_SUMMARY, "metrics", "comparison_experiment_name"]), json_values, max_size=3
    ),
)


@given(reply=summary_replies)
def test_any_summary_reply_is_a_summary_with_numeric_scores_or_an_invalid_reply(empty_sandbox, reply):
    client = client_for(empty_sandbox, max_retries=0)
    # The sandbox's summarize route answers this instead of its own summary.
    empty_sandbox.state.experiment_store.summarize = lambda *args, **kwargs: reply
    try:
        summary = client.summarize_experiment(UNKNOWN_EXPERIMENT)
    except InvalidReply:
        return
    assert all(
        isinstance(summary[key], str) for key in ("project_name", "experiment_name", "project_url", "experiment_url")
    )
    assert isinstance(summary["scores"], dict) and isinstance(summary["metrics"], dict)
    assert all(isinstance(item["score"], int | float) for item in summary["scores"].values())
    assert isinstance(summary["comparison_experiment_name"], str | None)


# --- failures -----------------------------------------------------------------------------------


def _create(client):
    return client.create_experiment(PROJECT_ID, name="e")


def _list(client):
    return client.list_experiments(PROJECT_ID)


def _insert(client):
    return client.insert_experiment_events(client.create_experiment(PROJECT_ID, name="e")["id"], events([("a", 1)]))


def _summarize(client):
    return client.summarize_experiment(client.create_experiment(PROJECT_ID, name="e")["id"])


CALLS = [
    ("experiment_create", _create),
    ("experiment_list", _list),
    ("experiment_insert", _insert),
    ("experiment_summarize", _summarize),
]


@pytest.mark.parametrize("route, call", CALLS)
def test_a_5xx_is_retried_and_the_call_succeeds(empty_sandbox, route, call):
    empty_sandbox.faults.add(route, "status", status=503)
    call(client_for(empty_sandbox))
    assert empty_sandbox.count(route) == 2
    assert len(empty_sandbox.state.experiments()) == (0 if route == "experiment_list" else 1)


@pytest.mark.parametrize("route, call", CALLS)
def test_a_5xx_that_persists_is_a_transient_error_naming_the_endpoint_and_the_attempts(empty_sandbox, route, call):
    empty_sandbox.faults.add(route, "status", status=503, times=None)
    with pytest.raises(TransientServiceError, match=r"kept failing with HTTP 503 after 3 attempts; try again later"):
        call(client_for(empty_sandbox))
    assert empty_sandbox.count(route) == 3


@pytest.mark.parametrize(
    "route, call, advice",
    [
        ("experiment_create", _create, "check BRAINTRUST_PROJECT_ID"),
        ("experiment_list", _list, "check BRAINTRUST_PROJECT_ID"),
        ("experiment_insert", _insert, "a score must lie between 0 and 1"),
        ("experiment_summarize", _summarize, "the experiment to compare against may be gone"),
    ],
)
def test_a_400_says_what_failed_and_what_to_do_in_one_line_without_a_retry(empty_sandbox, route, call, advice):
    empty_sandbox.faults.add(route, "status", status=400, times=None)
    with pytest.raises(PermanentServiceError) as raised:
        call(client_for(empty_sandbox))
    message = str(raised.value)
    assert "HTTP 400; " in message and advice in message and "run again" in message and "\n" not in message
    assert empty_sandbox.count(route) == 1


def test_an_experiment_deleted_before_its_events_arrive_says_to_run_again(empty_sandbox):
    with pytest.raises(PermanentServiceError, match="HTTP 404; the experiment was deleted since it was created"):
        client_for(empty_sandbox).insert_experiment_events(UNKNOWN_EXPERIMENT, events([("a", 1)]))
