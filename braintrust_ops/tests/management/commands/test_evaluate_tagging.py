"""evaluate_tagging: the labeller (or a candidate) over the logs people reviewed, as a Braintrust experiment."""

import pytest
from django.core.management import CommandError
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.services.evaluation import dataset_example, jaccard
from braintrust_ops.tests.small_project import COOK, TRANSLATE
from braintrust_ops.tests.strategies import json_values
from braintrust_ops.tests.strategies import text as any_text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reviewed(small_project, run_command, ops_settings):
    """Two logs reviewed in Braintrust: one corrected (translation added), one confirmed."""
    ops_settings(WRITE_BACK="true")
    run_command("tag_logs")
    for text, tags in ((COOK, ["halacha", "translation"]), (TRANSLATE, ["translation", "reviewed"])):
        log = next(row for row in small_project.state.logs() if row["input"] == text)
        small_project.state.update_log(log["id"], tags=tags)
    run_command("tag_logs")
    return small_project


def test_the_dry_run_says_what_it_would_send_and_its_cost_and_sends_nothing(reviewed, run_command):
    calls = reviewed.count("messages")
    result = run_command("evaluate_tagging", "--dry-run")
    assert "[dry run] Would label 2 reviewed logs with claude-haiku-4-5, prompt " in result.stdout
    assert "about $0.0" in result.stdout and "Nothing was sent." in result.stdout
    assert reviewed.count("messages") == calls and reviewed.count("experiment_create") == 0


def test_an_evaluation_is_an_experiment_with_one_event_per_reviewed_log_and_the_per_tag_figures(reviewed, run_command):
    calls = reviewed.count("messages")
    result = run_command("evaluate_tagging", "--name", "nightly labeller")
    assert reviewed.count("messages") == calls + 2
    assert "Labelled 2 of 2 reviewed logs with claude-haiku-4-5" in result.stdout
    assert "Exact match with people's labels: 0.50" in result.stdout
    assert "translation: precision 1.00 [0.21-1.00] of 1, recall 0.50 [0.09-0.91] of 2, F1 0.67" in result.stdout
    assert "Experiment: nightly labeller http://127.0.0.1:" in result.stdout
    (experiment,) = reviewed.state.experiments()
    events = {event["input"]["input"]: event for event in experiment["events"]}
    assert events[COOK]["output"] == ["halacha"] and events[COOK]["expected"] == ["halacha", "translation"]
    assert events[COOK]["scores"] == {"exact_match": 0.0, "jaccard": 0.5}
    assert events[TRANSLATE]["scores"] == {"exact_match": 1.0, "jaccard": 1.0}
    per_tag = {row["tag"]: row for row in experiment["metadata"]["per_tag"]}
    assert per_tag["translation"]["false_negatives"] == 1


def test_a_candidate_is_compared_with_the_current_labellers_last_experiment(reviewed, run_command):
    run_command("evaluate_tagging", "--name", "current")
    result = run_command("evaluate_tagging", "--model", "claude-sonnet-4-5", "--name", "candidate")
    assert "with claude-sonnet-4-5" in result.stdout
    assert "against current" in result.stdout
    experiments = {experiment["name"]: experiment for experiment in reviewed.state.experiments()}
    assert experiments["candidate"]["base_exp_id"] == experiments["current"]["id"]


def test_a_candidate_prompt_file_is_used_and_named_by_its_hash(reviewed, run_command, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Label the log with the tags that apply.", encoding="utf-8")
    result = run_command("evaluate_tagging", "--prompt-file", str(prompt), "--dry-run")
    assert "prompt file-" in result.stdout
    with pytest.raises(CommandError, match="cannot be read as UTF-8 text"):
        run_command("evaluate_tagging", "--prompt-file", str(tmp_path / "missing.txt"), "--dry-run")


def test_without_reviewed_logs_it_says_so_in_one_line_and_sends_nothing(small_project, run_command):
    run_command("tag_logs")
    with pytest.raises(CommandError, match="No reviewed logs to evaluate against") as failure:
        run_command("evaluate_tagging")
    assert "\n" not in str(failure.value)
    assert small_project.count("experiment_create") == 0


sets = st.frozensets(st.sampled_from("abcde"))


@given(sets, sets)
def test_jaccard_is_one_for_equal_labels_zero_for_disjoint_ones_and_symmetric(first, second):
    value = jaccard(set(first), set(second))
    assert 0.0 <= value <= 1.0 and value == jaccard(set(second), set(first))
    assert (value == 1.0) == (first == second)
    assert (value == 0.0) == (bool(first | second) and not first & second)


TAGGABLE = {"halacha", "translation"}
# A dataset row in the shape of the OpenAPI spec's DatasetEvent, each field any JSON or missing.
rows = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(any_text, json_values),
            "input": json_values,
            "expected": json_values,
            "tags": st.one_of(st.none(), st.lists(st.one_of(st.sampled_from(sorted(TAGGABLE)), json_values))),
        },
    ),
)


@given(row=rows)
def test_any_dataset_row_is_an_example_with_its_id_and_its_taggable_tags_or_is_left_out(row):
    example = dataset_example(row, TAGGABLE)
    is_event = isinstance(row, dict) and isinstance(row.get("id"), str) and row["id"] != ""
    assert (example is not None) == is_event
    if example is not None:
        assert example.source_id == row["id"] and (example.input, example.output) == (
            row.get("input"),
            row.get("expected"),
        )
        tags = row.get("tags") if isinstance(row.get("tags"), list) else []
        assert example.expected == {tag for tag in tags if isinstance(tag, str)} & TAGGABLE


def test_rows_of_a_dataset_that_are_no_dataset_events_are_left_out_and_the_others_evaluated(
    small_project, datasets_project, run_command
):
    run_command("tag_logs", "--push")
    (good,) = [row for row in small_project.state.dataset_rows(datasets_project.both) if row["input"] == COOK]
    events = [7, {"id": 12, "input": "x"}, {"input": "no id"}, good]
    small_project.faults.add("dataset_fetch", "reply", body={"events": events, "cursor": None}, times=1)
    result = run_command("evaluate_tagging", "--dataset", "Mixed", "--dry-run")
    assert "Left out 3 rows of the dataset that are no dataset event (no string id)." in result.stdout
    assert "[dry run] Would label 1 rows of dataset Mixed" in result.stdout


def test_a_named_dataset_of_labelled_rows_can_stand_in_for_the_reviewed_logs(
    small_project, datasets_project, run_command
):
    run_command("tag_logs", "--push")  # Mixed holds COOK (halacha) and TRANSLATE (translation)
    rows = small_project.state.dataset_rows(datasets_project.both)
    cook_row = next(row for row in rows if row["input"] == COOK)
    small_project.state.insert_rows(datasets_project.both, [{**cook_row, "tags": ["halacha", "sources"]}])
    result = run_command("evaluate_tagging", "--dataset", "Mixed", "--name", "from a dataset")
    assert "Labelled 2 of 2 rows of dataset Mixed with claude-haiku-4-5" in result.stdout
    assert "Exact match with people's labels: 0.50" in result.stdout
    (experiment,) = small_project.state.experiments()
    assert experiment["metadata"]["examples_from"] == "dataset Mixed"
    with pytest.raises(CommandError, match="No dataset 'Nope'"):
        run_command("evaluate_tagging", "--dataset", "Nope", "--dry-run")
