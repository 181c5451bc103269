"""Names typed in Braintrust (tags, datasets) reach stdout, logs, the ledger and the run record: half an
emoji in one never crashes a command, and an ANSI escape or a line break in one never forges a line."""

from datetime import UTC, datetime

import pytest

from braintrust_ops.models import CommandRun, DatasetInsertion, TaggedLog
from braintrust_ops.tests.factories import tagged_log

pytestmark = pytest.mark.django_db(transaction=True)

HALF_EMOJI = "\ud83d"
FORGED = "Halacha evals\x1b[2K\r\nHalacha evals: matched 9, already present 0, inserted 9, failed 0"


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry_run", "run"])
def test_a_tag_named_with_half_an_emoji_is_left_out_by_name_and_the_others_are_tagged(
    small_project, run_command, dry_run
):
    small_project.state.add_tag(f"emoji{HALF_EMOJI}", "dataset-tagging: broken")
    result = run_command("tag_logs", *(["--dry-run"] if dry_run else []))
    assert "Tag left out of tagging: 'emoji\\ud83d': its name or description holds half an emoji" in result.stderr
    if dry_run:
        assert "[dry run] Would send 3 logs to Claude" in result.stdout
    else:
        assert "Sent to Claude: 3;" in result.stdout
        assert TaggedLog.objects.filter(status="tagged").count() == 3


def test_datasets_named_with_half_an_emoji_or_escape_sequences_are_pushed_and_printed_on_one_line_each(
    datasets_project, run_command
):
    state = datasets_project.state
    state.clear_datasets()
    odd = state.add_dataset(f"A {HALF_EMOJI} half", '[[relevant_tags: ["halacha"]]]')["id"]
    forged = state.add_dataset(FORGED, '[[relevant_tags: ["halacha", "\\u001b[31mred"]]]')["id"]
    good = state.add_dataset("Z good", '[[relevant_tags: ["halacha"]]]')["id"]
    tagged_log("l1", "halacha")

    result = run_command("push_to_datasets")

    for dataset_id in (odd, forged, good):
        assert len(state.dataset_rows(dataset_id)) == 1
    assert "\x1b" not in result.output and HALF_EMOJI not in result.output
    assert "A \\ud83d half: matched 1, already present 0, inserted 1, failed 0" in result.stdout
    assert "Halacha evals\\x1b[2K\\r\\nHalacha evals: matched 9" in result.stdout
    assert "Dataset subscribes to a tag that is not taggable (never matches): Halacha evals\\x1b" in result.stderr
    assert result.stderr.rstrip().endswith(": \\x1b[31mred")
    assert not [line for line in result.output.splitlines() if line.startswith("Halacha evals: matched 9")]
    names = set(DatasetInsertion.objects.values_list("dataset_name", flat=True))
    assert names == {"A \\ud83d half", FORGED.encode("unicode_escape").decode(), "Z good"}
    assert CommandRun.objects.get().outcome == "succeeded"


def test_a_tag_name_with_a_bidi_override_is_used_and_printed_with_the_override_visible(small_project, run_command):
    name = "evil\u202egat"  # shows as "eviltag" reversed on a terminal that honours it
    small_project.state.add_tag(name, "dataset-tagging: a name with a right-to-left override")
    small_project.state.add_log(input=f"a question about {name}", output="a", created=datetime.now(UTC))
    result = run_command("tag_logs")
    assert "\u202e" not in result.output and "evil\\u202egat 1" in result.stdout
    assert TaggedLog.objects.filter(tags__name=name).count() == 1
