"""The sandbox's experiments over real HTTP: create, list, insert and summarize, held to Braintrust's OpenAPI
spec (requests checked against its request schemas, replies against its response schemas)."""

import itertools
from statistics import fmean

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops_sandbox import BRAINTRUST_KEY, OTHER_PROJECT_ID, PROJECT_ID, openapi
from braintrust_ops_sandbox.experiments import Experiments

AUTH = {"Authorization": f"Bearer {BRAINTRUST_KEY}"}
UNKNOWN_PROJECT = "00000000-0000-4000-8000-000000000000"
UNKNOWN_EXPERIMENT = "11111111-1111-4111-8111-111111111111"
SUMMARIZE = "/v1/experiment/{experiment_id}/summarize"


def conforms(path: str, method: str, reply: requests.Response) -> dict:
    assert reply.status_code == 200, reply.text
    error = openapi.first_error(openapi.response_pointer(path, method), reply.json())
    assert error is None, f"{method.upper()} {path}: {error}"
    return reply.json()


def create(sandbox, **body) -> requests.Response:
    return requests.post(
        f"{sandbox.url}/v1/experiment", headers=AUTH, json={"project_id": PROJECT_ID, **body}, timeout=5
    )


def created(sandbox, **body) -> dict:
    return conforms("/v1/experiment", "post", create(sandbox, **body))


def insert(sandbox, experiment_id: str, events: object) -> requests.Response:
    url = f"{sandbox.url}/v1/experiment/{experiment_id}/insert"
    return requests.post(url, headers=AUTH, json={"events": events}, timeout=5)


def listing(sandbox, **params) -> requests.Response:
    return requests.get(f"{sandbox.url}/v1/experiment", headers=AUTH, params=params, timeout=5)


def summarize(sandbox, experiment_id: str, **params) -> requests.Response:
    url = f"{sandbox.url}/v1/experiment/{experiment_id}/summarize"
    return requests.get(url, headers=AUTH, params={"summarize_scores": "true", **params}, timeout=5)


def scored(pairs: list[tuple[str, float]], name: str = "agreement") -> list[dict]:
    return [{"input": {"log": log}, "scores": {name: value}} for log, value in pairs]


# --- create -----------------------------------------------------------------------------------


def test_a_created_experiment_replies_as_the_spec_says_and_is_stored(empty_sandbox):
    experiment = created(empty_sandbox, name="tagging eval", description="d", metadata={"labeller": "claude"})
    assert (experiment["name"], experiment["description"], experiment["metadata"]) == (
        "tagging eval",
        "d",
        {"labeller": "claude"},
    )
    assert [e["id"] for e in empty_sandbox.state.experiments()] == [experiment["id"]]


def test_a_name_taken_in_the_project_returns_that_experiment_unless_ensure_new_asks_for_a_new_name(empty_sandbox):
    first = created(empty_sandbox, name="eval")
    assert created(empty_sandbox, name="eval", description="ignored") == first
    second = created(empty_sandbox, name="eval", ensure_new=True)
    third = created(empty_sandbox, name="eval", ensure_new=True)
    assert len({first["id"], second["id"], third["id"]}) == 3
    assert len({first["name"], second["name"], third["name"]}) == 3
    # The same name in another project is no clash.
    assert created(empty_sandbox, name="eval", project_id=OTHER_PROJECT_ID, ensure_new=True)["name"] == "eval"


def test_an_experiment_without_a_name_gets_one_of_its_own(empty_sandbox):
    names = {created(empty_sandbox)["name"] for _ in range(3)}
    assert len(names) == 3 and all(names)


def test_creating_in_a_project_the_key_cannot_read_is_refused_as_the_project_route_refuses_it(empty_sandbox):
    assert create(empty_sandbox, project_id=UNKNOWN_PROJECT, name="x").status_code == 403
    assert empty_sandbox.state.experiments() == []


@pytest.mark.parametrize(
    "body, where",
    [
        ({"project_id": "not-a-uuid"}, "project_id"),
        ({"name": ""}, "name"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        ({"ensure_new": "yes"}, "ensure_new"),
        ({"base_exp_id": "not-a-uuid"}, "base_exp_id"),
    ],
)
def test_a_create_body_the_spec_does_not_allow_gets_400_naming_the_field(empty_sandbox, body, where):
    reply = create(empty_sandbox, **body)
    assert reply.status_code == 400 and where in reply.json()["error"]
    assert empty_sandbox.state.experiments() == []


def test_a_create_body_without_a_project_gets_400(empty_sandbox):
    reply = requests.post(f"{empty_sandbox.url}/v1/experiment", headers=AUTH, json={"name": "x"}, timeout=5)
    assert reply.status_code == 400 and "'project_id' is a required property" in reply.json()["error"]


# --- list -------------------------------------------------------------------------------------


def test_the_listing_is_the_projects_newest_first_page_by_page(empty_sandbox):
    ids = [created(empty_sandbox, name=f"e{index}")["id"] for index in range(5)]
    created(empty_sandbox, name="theirs", project_id=OTHER_PROJECT_ID)
    first = conforms("/v1/experiment", "get", listing(empty_sandbox, project_id=PROJECT_ID, limit=2))["objects"]
    rest = listing(empty_sandbox, project_id=PROJECT_ID, limit=10, starting_after=first[-1]["id"]).json()["objects"]
    assert [e["id"] for e in first + rest] == ids[::-1]


def test_the_listing_filters_by_name_as_the_sdk_looks_up_a_base_experiment(empty_sandbox):
    wanted = created(empty_sandbox, name="baseline")
    created(empty_sandbox, name="other")
    objects = listing(empty_sandbox, project_id=PROJECT_ID, experiment_name="baseline").json()["objects"]
    assert [e["id"] for e in objects] == [wanted["id"]]


# --- insert -----------------------------------------------------------------------------------


def test_inserted_events_are_stored_upserted_by_id_and_confirmed_as_the_spec_says(empty_sandbox):
    experiment = created(empty_sandbox, name="e")
    events = [{"id": "a", "input": "q1", "scores": {"s": 1}}, {"input": "q2", "expected": "x", "tags": ["t"]}]
    row_ids = conforms("/v1/experiment/{experiment_id}/insert", "post", insert(empty_sandbox, experiment["id"], events))
    assert row_ids["row_ids"][0] == "a" and len(row_ids["row_ids"]) == 2
    insert(empty_sandbox, experiment["id"], [{"id": "a", "input": "q1", "scores": {"s": 0}}])
    insert(empty_sandbox, experiment["id"], [{"id": row_ids["row_ids"][1], "_object_delete": True}])
    (stored,) = empty_sandbox.state.experiments()[0]["events"]
    assert (stored["id"], stored["scores"], stored["experiment_id"]) == ("a", {"s": 0}, experiment["id"])


def test_a_merge_keeps_the_stored_fields(empty_sandbox):
    experiment = created(empty_sandbox, name="e")
    insert(empty_sandbox, experiment["id"], [{"id": "a", "input": "q", "scores": {"s": 1}}])
    insert(empty_sandbox, experiment["id"], [{"id": "a", "_is_merge": True, "metadata": {"k": 1}}])
    (stored,) = empty_sandbox.state.experiments()[0]["events"]
    assert (stored["input"], stored["scores"], stored["metadata"]) == ("q", {"s": 1}, {"k": 1})


def test_inserting_into_an_unknown_experiment_is_404(empty_sandbox):
    assert insert(empty_sandbox, UNKNOWN_EXPERIMENT, [{"input": "q"}]).status_code == 404


@pytest.mark.parametrize(
    "event, where",
    [
        ({"scores": {"s": 1.5}}, "events/1/scores/s"),  # scores lie in [0, 1]
        ({"scores": {"s": "high"}}, "events/1/scores/s"),
        ({"tags": "halacha"}, "events/1/tags"),
        ({"metadata": ["x"]}, "events/1/metadata"),
    ],
)
def test_an_event_the_spec_does_not_allow_gets_400_naming_it_and_none_of_the_request_is_stored(
    empty_sandbox, event, where
):
    experiment = created(empty_sandbox, name="e")
    reply = insert(empty_sandbox, experiment["id"], [{"input": "fine"}, event])
    assert reply.status_code == 400 and where in reply.json()["error"]
    assert empty_sandbox.state.experiments()[0]["events"] == []


def test_an_insert_body_whose_events_are_not_a_list_gets_400(empty_sandbox):
    reply = insert(empty_sandbox, created(empty_sandbox, name="e")["id"], "not a list")
    assert reply.status_code == 400 and "events" in reply.json()["error"]


# --- summarize --------------------------------------------------------------------------------


def test_the_summary_scores_against_the_base_experiment_by_input(empty_sandbox):
    base = created(empty_sandbox, name="base")
    insert(empty_sandbox, base["id"], scored([("a", 0), ("b", 1), ("c", 0.5), ("only-in-base", 0)]))
    candidate = created(empty_sandbox, name="candidate", base_exp_id=base["id"])
    insert(empty_sandbox, candidate["id"], scored([("a", 1), ("b", 0), ("c", 1), ("only-here", 1)]))
    summary = conforms(SUMMARIZE, "get", summarize(empty_sandbox, candidate["id"]))
    assert summary["comparison_experiment_name"] == "base"
    score = summary["scores"]["agreement"]
    assert score == {
        "name": "agreement",
        "score": 0.75,
        "diff": pytest.approx(0.75 - 0.375),
        "improvements": 2,  # a and c
        "regressions": 1,  # b
    }
    assert summary["metrics"] == {}


def test_the_comparison_parameter_wins_over_the_base_experiment(empty_sandbox):
    base = created(empty_sandbox, name="base")
    other = created(empty_sandbox, name="other")
    insert(empty_sandbox, other["id"], scored([("a", 1)]))
    candidate = created(empty_sandbox, name="candidate", base_exp_id=base["id"])
    insert(empty_sandbox, candidate["id"], scored([("a", 0)]))
    summary = summarize(empty_sandbox, candidate["id"], comparison_experiment_id=other["id"]).json()
    assert summary["comparison_experiment_name"] == "other"
    assert (summary["scores"]["agreement"]["diff"], summary["scores"]["agreement"]["regressions"]) == (-1, 1)


def test_without_a_base_the_comparison_is_the_projects_previous_experiment(empty_sandbox):
    created(empty_sandbox, name="older")
    previous = created(empty_sandbox, name="previous")
    created(empty_sandbox, name="elsewhere", project_id=OTHER_PROJECT_ID)
    candidate = created(empty_sandbox, name="candidate")
    created(empty_sandbox, name="later")
    assert summarize(empty_sandbox, candidate["id"]).json()["comparison_experiment_name"] == previous["name"]


def test_the_first_experiment_has_scores_but_no_comparison(empty_sandbox):
    only = created(empty_sandbox, name="only")
    insert(empty_sandbox, only["id"], scored([("a", 1), ("b", 0), ("c", None)]))
    summary = conforms(SUMMARIZE, "get", summarize(empty_sandbox, only["id"]))
    assert summary["comparison_experiment_name"] is None
    assert summary["scores"] == {"agreement": {"name": "agreement", "score": 0.5, "improvements": 0, "regressions": 0}}


def test_without_summarize_scores_only_the_metadata_comes_back_with_links_to_the_experiment(empty_sandbox):
    experiment = created(empty_sandbox, name="tagging eval")
    insert(empty_sandbox, experiment["id"], scored([("a", 1)]))
    reply = requests.get(f"{empty_sandbox.url}/v1/experiment/{experiment['id']}/summarize", headers=AUTH, timeout=5)
    summary = conforms(SUMMARIZE, "get", reply)
    assert "scores" not in summary and summary["experiment_name"] == "tagging eval"
    project_url = f"{empty_sandbox.url}/app/sandbox-org/p/Sefaria%20chatbot"
    assert summary["project_url"] == project_url
    assert summary["experiment_url"] == f"{project_url}/experiments/tagging%20eval"


def test_summarizing_an_unknown_experiment_is_404_and_an_unknown_comparison_400(empty_sandbox):
    assert summarize(empty_sandbox, UNKNOWN_EXPERIMENT).status_code == 404
    experiment = created(empty_sandbox, name="e")
    assert summarize(empty_sandbox, experiment["id"], comparison_experiment_id=UNKNOWN_EXPERIMENT).status_code == 400


# --- faults and the control API ---------------------------------------------------------------


@pytest.mark.parametrize(
    "route, call",
    [
        ("experiment_create", lambda s: create(s, name="e")),
        ("experiment_list", lambda s: listing(s, project_id=PROJECT_ID)),
        ("experiment_insert", lambda s: insert(s, UNKNOWN_EXPERIMENT, [])),
        ("experiment_summarize", lambda s: summarize(s, UNKNOWN_EXPERIMENT)),
    ],
)
def test_each_experiment_route_takes_faults_and_counts_its_requests(empty_sandbox, route, call):
    empty_sandbox.faults.add(route, "status", status=503)
    assert call(empty_sandbox).status_code == 503
    assert empty_sandbox.count(route) == 1


def test_the_control_api_lists_and_clears_experiments_with_their_events(empty_sandbox):
    experiment = created(empty_sandbox, name="e")
    insert(empty_sandbox, experiment["id"], [{"id": "a", "input": "q"}])
    listed = requests.get(f"{empty_sandbox.url}/_sandbox/experiments", timeout=5).json()["experiments"]
    assert [(e["name"], [event["id"] for event in e["events"]]) for e in listed] == [("e", ["a"])]
    requests.delete(f"{empty_sandbox.url}/_sandbox/experiments", timeout=5)
    assert empty_sandbox.state.experiments() == []


# --- the summary's numbers, for any scores --------------------------------------------------------

cases = st.sampled_from(["a", "b", "c", "d"])
score_values = st.one_of(st.none(), st.floats(min_value=0, max_value=1), st.sampled_from([0, 1]))
events = st.lists(st.tuples(cases, score_values), max_size=12)


@given(events, events)
def test_a_summary_for_any_scores_conforms_to_the_spec_and_its_numbers_add_up(mine, theirs):
    ids = (f"00000000-0000-4000-8000-{n:012d}" for n in itertools.count())
    store = Experiments(lambda: next(ids), itertools.count(1).__next__)
    base = store.create({"project_id": PROJECT_ID, "name": "base"})
    candidate = store.create({"project_id": PROJECT_ID, "name": "candidate"})
    store.insert(base["id"], scored(theirs))
    store.insert(candidate["id"], scored(mine))
    summary = store.summarize(candidate["id"], base_url="http://127.0.0.1:1", summarize_scores=True)
    assert openapi.first_error(openapi.response_pointer(SUMMARIZE, "get"), summary) is None
    mine_values = [value for _, value in mine if value is not None]
    theirs_values = [value for _, value in theirs if value is not None]
    if not mine_values:
        assert summary["scores"] == {}
        return
    score = summary["scores"]["agreement"]
    assert score["score"] == pytest.approx(fmean(mine_values))
    assert ("diff" in score) == bool(theirs_values)
    if theirs_values:
        assert score["diff"] == pytest.approx(fmean(mine_values) - fmean(theirs_values))
    shared = {case for case, value in mine if value is not None} & {case for case, value in theirs if value is not None}
    assert score["improvements"] + score["regressions"] <= len(shared)
