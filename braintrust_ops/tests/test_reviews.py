"""reviews.review_of: when a log read from Braintrust carries a person's label (example and property tests)."""

from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.reviews import REVIEWED_TAG, review_of, reviewer

TAGGABLE = {"halacha", "translation", "sources"}
names = st.sampled_from(sorted(TAGGABLE) + ["ui-only", "needs-review", REVIEWED_TAG])
tag_lists = st.lists(names, unique=True, max_size=6)


def review(current, source=None, human=None, claude=None):
    return review_of(current=current, source_tags=source, human_tags=human, claude_tags=claude, taggable=TAGGABLE)


def test_a_first_read_is_where_a_log_starts_unless_it_carries_reviewed():
    assert review(["sources"]) is None
    assert review(["sources", REVIEWED_TAG]).tags == ["sources"]


def test_a_changed_taggable_tag_is_a_correction_measured_against_claudes_label():
    found = review(["halacha", "translation", "ui-only"], source=["halacha"], claude=["halacha"])
    assert (found.tags, found.added, found.removed) == (["halacha", "translation"], ["translation"], [])


def test_tags_outside_the_taggable_set_and_a_retired_one_are_no_change():
    assert review(["halacha", "needs-review"], source=["halacha"]) is None
    assert review(["halacha"], source=["halacha", "retired-tag"]) is None


def test_a_label_recorded_already_is_not_recorded_again():
    assert review(["sources", REVIEWED_TAG], source=["halacha"], human=["sources"]) is None


def test_the_reviewers_name_is_read_from_the_metadata_when_there():
    assert reviewer({"reviewed_by": "  Rivka "}) == "Rivka"
    assert reviewer({"reviewed_by": 7}) == reviewer(None) == reviewer("text") == ""


@given(current=tag_lists, source=st.none() | tag_lists, human=st.none() | tag_lists, claude=st.none() | tag_lists)
def test_a_review_is_the_taggable_tags_as_they_stand_and_its_changes_add_up(current, source, human, claude):
    found = review(current, source=source, human=human, claude=claude)
    if found is None:
        return
    assert found.tags == sorted(set(current) & TAGGABLE)
    assert set(found.added) == set(found.tags) - set(claude or [])
    assert set(found.removed) == set(claude or []) - set(found.tags)


@given(current=tag_lists, claude=st.none() | tag_lists)
def test_without_reviewed_a_log_whose_taggable_tags_are_as_last_read_carries_no_review(current, claude):
    current = [tag for tag in current if tag != REVIEWED_TAG]
    source = sorted(set(current) & TAGGABLE)
    assert review(current, source=source, claude=claude) is None


@given(st.recursive(st.none() | st.integers() | st.text(), lambda c: st.dictionaries(st.text(), c, max_size=3)))
def test_any_metadata_gives_a_reviewer_name_of_at_most_255_characters_or_none(metadata):
    name = reviewer(metadata)
    assert isinstance(name, str) and len(name) <= 255
    expected = metadata.get("reviewed_by") if isinstance(metadata, dict) else None
    assert name == (expected.strip()[:255] if isinstance(expected, str) else "")
