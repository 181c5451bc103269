"""tag_logs and a tag list that changes: each label records what produced it, stale labels are counted,
and --retag-stale labels them again, oldest first, within the budget and the retention; the push then
adds the newly matching rows once and reports the rows that no longer match."""

from datetime import UTC, datetime, timedelta

import pytest

from braintrust_ops.models import CommandRun, DatasetInsertion, TaggedLog
from braintrust_ops.provenance import tagset_fingerprint
from braintrust_ops.services.datasets import dataset_row_id
from braintrust_ops.taggable_tags import select_taggable_tags
from braintrust_ops.tagging_prompt import PROMPT_VERSION

pytestmark = pytest.mark.django_db(transaction=True)

TAGS = {"halacha": "Questions of Jewish law. dataset-tagging", "translation": "dataset-tagging: translations"}


def _set_tags(sandbox, tags: dict[str, str]) -> str:
    """Make ``tags`` the project's tags; return the fingerprint of their taggable set."""
    sandbox.state.clear_tags()
    for name, description in tags.items():
        sandbox.state.add_tag(name, description)
    return tagset_fingerprint(select_taggable_tags(sandbox.state.tags(None)))


@pytest.fixture
def labelled(sandbox_env, run_command):
    """Three logs of different ages labelled under TAGS, and a dataset for the tag added later."""
    sandbox = sandbox_env
    sandbox.state.clear_logs()
    sandbox.state.clear_datasets()
    sandbox.first_set = _set_tags(sandbox, TAGS)
    now = datetime.now(UTC)
    sandbox.state.add_log(id="oldest", input="Where is this in the Talmud? Shabbat", created=now - timedelta(hours=3))
    sandbox.state.add_log(id="middle", input="Which Rashi source is this?", created=now - timedelta(hours=2))
    sandbox.state.add_log(id="newest", input="Translate this source please", created=now - timedelta(hours=1))
    sandbox.halacha = sandbox.state.add_dataset("Halacha evals", '[[relevant_tags: ["halacha"]]]')["id"]
    sandbox.sources = sandbox.state.add_dataset("Sources evals", '[[relevant_tags: ["sources"]]]')["id"]
    run_command("tag_logs", "--push")
    return sandbox


def _fingerprints() -> dict[str, str]:
    return dict(TaggedLog.objects.values_list("log_id", "tagset_fingerprint"))


def test_each_label_records_the_tag_set_model_and_prompt_that_produced_it(labelled):
    log = TaggedLog.objects.get(log_id="oldest")
    assert (log.tagset_fingerprint, log.prompt_version, log.model) == (
        labelled.first_set,
        PROMPT_VERSION,
        "claude-haiku-4-5",
    )
    assert CommandRun.objects.get(command="tag_logs").counters["tagset_fingerprint"] == labelled.first_set


def test_a_changed_tag_list_is_reported_as_stale_labels_and_nothing_is_sent_without_retag_stale(labelled, run_command):
    _set_tags(labelled, {**TAGS, "sources": "dataset-tagging: where a text is found"})
    result = run_command("tag_logs")
    assert "Labelled under another set of taggable tags: 3 (tag_logs --retag-stale labels them again)" in result.stdout
    assert labelled.count("messages") == 3  # the first run's three calls, none since
    assert set(_fingerprints().values()) == {labelled.first_set}


def test_a_reworded_meaning_makes_labels_stale_but_the_order_tags_are_listed_in_does_not(labelled):
    reordered = _set_tags(labelled, dict(reversed(list(TAGS.items()))))
    reworded = _set_tags(labelled, {**TAGS, "halacha": "dataset-tagging: questions of Jewish law and practice"})
    assert reordered == labelled.first_set and reworded != labelled.first_set


def test_retag_stale_labels_the_oldest_first_within_the_budget_and_the_next_run_the_rest(
    labelled, run_command, ops_settings
):
    new_set = _set_tags(labelled, {**TAGS, "sources": "dataset-tagging: where a text is found"})
    ops_settings(TAGGING_MAX_LOGS_PER_RUN=2)
    result = run_command("tag_logs", "--retag-stale")
    assert "Over the run's limit or budget, left pending for the next run: 1" in result.stdout
    assert _fingerprints() == {"oldest": new_set, "middle": new_set, "newest": labelled.first_set}
    assert TaggedLog.objects.get(log_id="oldest").tag_names == ["halacha", "sources"]
    run_command("tag_logs", "--retag-stale")
    assert set(_fingerprints().values()) == {new_set}
    assert run_command("tag_logs", "--retag-stale").stdout.count("Labelled under another set") == 0


def test_retag_stale_leaves_labels_older_than_the_retention(labelled, run_command, ops_settings):
    TaggedLog.objects.filter(log_id="oldest").update(logged_at=datetime.now(UTC) - timedelta(days=40))
    new_set = _set_tags(labelled, {**TAGS, "sources": "dataset-tagging: where a text is found"})
    run_command("tag_logs", "--retag-stale")
    assert _fingerprints() == {"oldest": labelled.first_set, "middle": new_set, "newest": new_set}


def test_after_a_tag_is_added_the_push_adds_the_newly_matching_rows_exactly_once(labelled, run_command):
    assert labelled.state.dataset_rows(labelled.sources) == []
    _set_tags(labelled, {**TAGS, "sources": "dataset-tagging: where a text is found"})
    run_command("tag_logs", "--retag-stale", "--push")
    run_command("push_to_datasets")
    rows = sorted(row["id"] for row in labelled.state.dataset_rows(labelled.sources))
    assert rows == sorted(dataset_row_id(log_id) for log_id in ("oldest", "middle", "newest"))
    assert DatasetInsertion.objects.filter(dataset_id=labelled.sources).count() == 3


def test_rows_whose_log_no_longer_matches_stay_in_the_dataset_and_the_push_says_how_many(labelled, run_command):
    halacha_rows = labelled.state.dataset_rows(labelled.halacha)
    assert [row["id"] for row in halacha_rows] == [dataset_row_id("oldest")]
    _set_tags(labelled, {"halacha": "retired: no longer for datasets", "translation": TAGS["translation"]})
    run_command("tag_logs", "--retag-stale")
    assert TaggedLog.objects.get(log_id="oldest").tag_names == []
    result = run_command("push_to_datasets")
    assert labelled.state.dataset_rows(labelled.halacha) == halacha_rows  # append-only
    assert "no longer matches its subscription" in result.stdout and "Halacha evals 1" in result.stdout
