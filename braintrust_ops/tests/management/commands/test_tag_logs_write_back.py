"""tag_logs with BRAINTRUST_OPS_WRITE_BACK: labels added to the source logs' tags in Braintrust, as a merge
that leaves everything else on the log as it was, once per label, and resumed after a failure."""

import pytest
from django.core.management import CommandError
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.models import TaggedLog
from braintrust_ops.services.tagging.write_back import merge_event, tag_change
from braintrust_ops.tests.small_project import COOK, TRANSLATE, WEATHER
from braintrust_ops_sandbox.log_merge import merged

pytestmark = pytest.mark.django_db(transaction=True)


def source_tags(sandbox) -> dict[str, list[str] | None]:
    return {row["input"]: row["tags"] for row in sandbox.state.logs()}


def test_labels_are_added_to_the_source_logs_tags_and_nothing_else_on_them_changes(
    small_project, run_command, write_back
):
    before = {row["input"]: row for row in small_project.state.logs()}
    small_project.state.update_log(before[COOK]["id"], tags=["reviewed-by-rabbi"], scores={"helpful": 1})
    result = run_command("tag_logs")
    assert source_tags(small_project) == {
        COOK: ["reviewed-by-rabbi", "halacha"],
        TRANSLATE: ["translation"],
        WEATHER: None,  # no label, nothing written
    }
    cook = next(row for row in small_project.state.logs() if row["input"] == COOK)
    assert cook["scores"] == {"helpful": 1} and cook["output"] == before[COOK]["output"]
    assert "Labels written back to their logs in Braintrust: 2 in 1 requests; 1 with nothing to change" in result.stdout
    assert small_project.count("project_logs_insert") == 1


def test_write_back_is_off_unless_asked_for(small_project, run_command):
    run_command("tag_logs")
    assert small_project.count("project_logs_insert") == 0
    assert set(TaggedLog.objects.values_list("written_at", flat=True)) == {None}


def test_the_logs_seen_again_after_the_write_cost_no_claude_call_and_no_dataset_row(
    small_project, datasets_project, run_command, write_back
):
    # datasets_project replaced the tags with its own three; the logs are small_project's.
    run_command("tag_logs", "--push")
    calls, inserts = small_project.count("messages"), small_project.count("dataset_insert")
    rows = {dataset: len(small_project.state.dataset_rows(dataset)) for dataset in (datasets_project.halacha,)}

    second = run_command("tag_logs", "--push")
    assert "Logs fetched: 2" in second.stdout  # the two logs written to came back with a new _xact_id
    assert small_project.count("messages") == calls
    assert small_project.count("dataset_insert") == inserts
    assert {dataset: len(small_project.state.dataset_rows(dataset)) for dataset in rows} == rows
    assert small_project.count("project_logs_insert") == 1  # each label written once


def test_a_relabel_removes_only_the_tags_this_app_wrote_and_no_longer_holds(small_project, run_command, write_back):
    run_command("tag_logs")
    translate = next(row for row in small_project.state.logs() if row["input"] == TRANSLATE)
    small_project.state.update_log(translate["id"], tags=["translation", "needs-review"])
    small_project.state.clear_tags()  # translation is no longer taggable: its labels are stale
    small_project.state.add_tag("halacha", "Questions of Jewish law. dataset-tagging")
    small_project.state.add_tag("sources", "Dataset-Tagging where a text is found")

    run_command("tag_logs", "--retag-stale")
    assert source_tags(small_project)[TRANSLATE] == ["needs-review"]
    assert source_tags(small_project)[COOK] == ["halacha"]
    assert TaggedLog.objects.get(input=TRANSLATE).written_tags == []


def test_a_write_that_fails_leaves_the_labels_stored_fails_the_run_in_one_line_and_the_next_run_writes_them(
    small_project, run_command, write_back, ops_settings
):
    ops_settings(HTTP_MAX_RETRIES=0)
    small_project.faults.add("project_logs_insert", "status", status=503, times=None)
    with pytest.raises(CommandError) as failure:
        run_command("tag_logs")
    message = str(failure.value)
    assert "Writing labels back to Braintrust's logs stopped" in message and "2 labels stay to be written" in message
    assert "\n" not in message
    assert TaggedLog.objects.filter(status="tagged").count() == 3  # the labels are kept

    small_project.faults.clear()
    result = run_command("tag_logs")
    assert "Labels written back to their logs in Braintrust: 2 in 1 requests" in result.stdout
    assert source_tags(small_project)[COOK] == ["halacha"]
    assert small_project.count("messages") == 3  # nothing labelled twice


def test_a_write_braintrust_refuses_on_its_own_is_set_aside_and_does_not_hold_back_the_others(
    small_project, run_command, write_back
):
    # The two-log request is refused, then the first log's write alone: the second log's goes through.
    small_project.faults.add("project_logs_insert", "status", status=400, times=2)
    result = run_command("tag_logs")
    assert "Braintrust refused 1 label writes on their own" in result.stderr
    refused, written = TaggedLog.objects.filter(input__in=[COOK, TRANSLATE]).order_by("pk")  # the order sent
    assert "HTTP 400" in refused.write_error and refused.written_tags is None
    assert source_tags(small_project)[refused.input] is None
    assert source_tags(small_project)[written.input] == written.tag_names == written.written_tags
    assert small_project.count("project_logs_insert") == 3

    run_command("tag_logs")  # not sent again night after night: only once the log is labelled again
    assert small_project.count("project_logs_insert") == 3


def test_the_dry_run_says_how_many_stored_labels_it_would_write_and_writes_nothing(
    small_project, run_command, write_back, settings
):
    settings.BRAINTRUST_OPS = {**settings.BRAINTRUST_OPS, "WRITE_BACK": "false"}
    run_command("tag_logs")
    settings.BRAINTRUST_OPS = {**settings.BRAINTRUST_OPS, "WRITE_BACK": "true"}
    result = run_command("tag_logs", "--dry-run")
    assert (
        "Would write the labels it makes back to their logs in Braintrust, and 3 labels stored earlier" in result.stdout
    )
    assert small_project.count("project_logs_insert") == 0


tag_names = st.lists(st.sampled_from(["halacha", "translation", "sources", "a", "b"]), unique=True, max_size=5)


@given(stored=tag_names, written=st.none() | tag_names, label=tag_names, persons=tag_names)
def test_a_write_keeps_every_tag_this_app_did_not_write_adds_the_new_and_drops_only_its_own(
    stored, written, label, persons
):
    """Whatever the log held (of this app's tags, some a person may have removed; and a person's own), a write
    adds what the label has new, removes only this app's tags the label dropped, and leaves the rest."""
    own = set(written or [])
    log = {"tags": sorted((set(stored) & own) | (set(persons) - own))}
    change = tag_change(label, written)
    after = set((merged(log, merge_event("log", change)) if not change.empty else log)["tags"])
    assert set(log["tags"]) - own <= after
    assert set(label) - own <= after
    assert not (own - set(label)) & after
