"""People's corrections, read from the logs in Braintrust: recorded beside Claude's label, winning over it,
and followed by the datasets (a row added once, or taken out)."""

import pytest

from braintrust_ops.models import DatasetInsertion, TaggedLog
from braintrust_ops.tests.small_project import COOK, TRANSLATE, WEATHER, person_sets_tags

pytestmark = pytest.mark.django_db(transaction=True)


def dataset_inputs(sandbox, dataset_id) -> list[str]:
    return sorted(row["input"] for row in sandbox.state.dataset_rows(dataset_id))


def test_a_tag_a_person_adds_is_their_label_and_puts_the_log_in_the_dataset_once(
    small_project, datasets_project, run_command, write_back
):
    run_command("tag_logs", "--push")
    assert dataset_inputs(small_project, datasets_project.translation) == [TRANSLATE]
    person_sets_tags(small_project, COOK, ["halacha", "translation"], metadata={"reviewed_by": "Rivka"})

    result = run_command("tag_logs", "--push")
    assert "People's labels read from the logs: 1 corrections, 0 confirming Claude's" in result.stdout
    cook = TaggedLog.objects.get(input=COOK)
    assert (cook.human_tags, cook.human_changes) == (
        ["halacha", "translation"],
        {"added": ["translation"], "removed": []},
    )
    assert cook.tag_names == ["halacha"] and cook.reviewed_by == "Rivka" and cook.reviewed_at is not None
    assert dataset_inputs(small_project, datasets_project.translation) == [COOK, TRANSLATE]
    inserts = small_project.count("dataset_insert")

    again = run_command("tag_logs", "--push")
    assert "People's labels" not in again.stdout
    assert small_project.count("dataset_insert") == inserts


def test_a_tag_a_person_removes_takes_the_row_out_of_the_datasets_that_no_longer_match(
    small_project, datasets_project, run_command, write_back
):
    run_command("tag_logs", "--push")
    assert dataset_inputs(small_project, datasets_project.halacha) == [COOK]
    person_sets_tags(small_project, COOK, [])

    result = run_command("tag_logs", "--push")
    assert "Halacha evals: matched 0" in result.stdout and "taken out after a person's correction: 1" in result.stdout
    assert dataset_inputs(small_project, datasets_project.halacha) == []
    assert dataset_inputs(small_project, datasets_project.both) == [TRANSLATE]
    cook = TaggedLog.objects.get(input=COOK)
    assert set(DatasetInsertion.objects.filter(log_id=cook.log_id).values_list("status", flat=True)) == {"removed"}

    again = run_command("push_to_datasets")
    assert "taken out" not in again.stdout and dataset_inputs(small_project, datasets_project.halacha) == []


def test_no_relabel_overwrites_a_persons_label_and_claudes_stays_for_comparison(
    small_project, datasets_project, run_command, write_back
):
    run_command("tag_logs")
    person_sets_tags(small_project, COOK, ["sources"])
    run_command("tag_logs")
    calls = small_project.count("messages")

    run_command("tag_logs", "--retag", "--hours", "48")
    assert small_project.count("messages") == calls + 2  # the two others, not the reviewed one
    cook = TaggedLog.objects.get(input=COOK)
    assert (cook.human_tags, cook.tag_names) == (["sources"], ["halacha"])
    assert next(row for row in small_project.state.logs() if row["input"] == COOK)["tags"] == ["sources"]


def test_the_reviewed_tag_confirms_claudes_label_without_changing_it(
    small_project, datasets_project, run_command, write_back
):
    run_command("tag_logs")
    person_sets_tags(small_project, TRANSLATE, ["translation", "reviewed"])
    result = run_command("tag_logs")
    assert "0 corrections, 1 confirming Claude's" in result.stdout
    translate = TaggedLog.objects.get(input=TRANSLATE)
    assert translate.human_tags == ["translation"] and translate.human_changes == {"added": [], "removed": []}


def test_a_log_a_person_labelled_before_this_app_saw_it_counts_once_it_carries_reviewed(datasets_project, run_command):
    from datetime import UTC, datetime, timedelta

    recent = datetime.now(UTC) - timedelta(hours=1)
    datasets_project.state.clear_logs()
    datasets_project.state.add_log(input="Kiddush text?", output="...", tags=["sources", "reviewed"], created=recent)
    datasets_project.state.add_log(input="Logged with a tag", output="...", tags=["sources"], created=recent)
    run_command("tag_logs", "--push")
    assert TaggedLog.objects.get(input="Kiddush text?").human_tags == ["sources"]
    assert TaggedLog.objects.get(input="Logged with a tag").human_tags is None  # where it starts, not a review


def test_without_write_back_a_tag_a_person_adds_is_a_correction_too(small_project, run_command):
    run_command("tag_logs")
    person_sets_tags(small_project, WEATHER, ["sources"])
    result = run_command("tag_logs")
    assert "1 corrections" in result.stdout
    assert TaggedLog.objects.get(input=WEATHER).human_changes == {"added": ["sources"], "removed": []}


def test_this_apps_own_writes_and_a_retired_tag_are_no_ones_correction(small_project, run_command, write_back):
    run_command("tag_logs")
    result = run_command("tag_logs")  # the written logs come back with new _xact_ids
    assert "People's labels" not in result.stdout
    small_project.state.clear_tags()
    small_project.state.add_tag("halacha", "Questions of Jewish law. dataset-tagging")
    translate = next(row for row in small_project.state.logs() if row["input"] == TRANSLATE)
    small_project.state.update_log(translate["id"], metadata={"note": "touched"})  # read again
    result = run_command("tag_logs")
    assert "People's labels" not in result.stdout
    assert TaggedLog.objects.filter(human_tags__isnull=False).count() == 0


def test_each_run_reports_claude_against_peoples_labels_per_tag_with_counts_and_intervals(
    small_project, datasets_project, run_command, write_back
):
    from braintrust_ops.models import CommandRun

    run_command("tag_logs")
    person_sets_tags(small_project, COOK, ["halacha", "translation"])
    person_sets_tags(small_project, TRANSLATE, ["translation", "reviewed"])
    result = run_command("tag_logs")
    assert "Claude against people's labels" in result.stdout
    lines = {line.split(" (")[0].strip(): line for line in result.stdout.splitlines() if "reviewed): precision" in line}
    # halacha: Claude gave it to COOK, so did the person: 1 of 1 both ways.
    assert "precision 1.00 [0.21-1.00] of 1, recall 1.00 [0.21-1.00] of 1, F1 1.00" in lines["halacha"]
    # translation: Claude gave it to TRANSLATE only; people to both: precision 1 of 1, recall 1 of 2.
    assert "precision 1.00 [0.21-1.00] of 1, recall 0.50 [0.09-0.91] of 2, F1 0.67" in lines["translation"]
    assert "(claude-haiku-4-5, prompt " in lines["translation"] and "2 reviewed" in lines["translation"]
    counters = CommandRun.objects.filter(command="tag_logs").latest("started_at").counters
    assert {row["tag"]: row["false_negatives"] for row in counters["agreement"]} == {"halacha": 0, "translation": 1}


def test_a_label_written_to_a_log_not_read_since_the_upgrade_is_not_mistaken_for_a_correction(
    small_project, run_command, ops_settings
):
    person_sets_tags(small_project, COOK, ["sources"])  # put there by the chatbot's own logging, before any run
    run_command("tag_logs")
    TaggedLog.objects.update(source_tags=None)  # as rows stored before this version are
    ops_settings(WRITE_BACK="true")
    run_command("tag_logs")  # writes halacha onto COOK, which this run did not read again
    result = run_command("tag_logs")  # reads COOK back: sources (the chatbot's) and halacha (ours)
    assert "People's labels" not in result.stdout
    assert TaggedLog.objects.get(input=COOK).human_tags is None
