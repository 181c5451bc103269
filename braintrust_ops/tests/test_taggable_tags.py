import pytest
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.provenance import tagset_fingerprint
from braintrust_ops.taggable_tags import TaggableTag, select_taggable_tags
from braintrust_ops.tagging_prompt import build_system_prompt
from braintrust_ops.tests.strategies import json_values, text


def test_only_tags_marked_dataset_tagging_in_any_case_are_offered():
    objects = [
        {"name": "halacha", "description": "Questions of Jewish law. dataset-tagging"},
        {"name": "translation", "description": "DATASET-TAGGING: requests to translate a text"},
        {"name": "sources", "description": "Dataset-Tagging - where a text is found"},
        {"name": "internal", "description": "used by the UI only"},
    ]
    assert [tag.name for tag in select_taggable_tags(objects)] == ["halacha", "translation", "sources"]


def test_marker_is_removed_from_the_meaning_passed_to_claude():
    tags = select_taggable_tags(
        [{"name": "translation", "description": "DATASET-TAGGING: requests to translate a text"}]
    )
    assert tags == [TaggableTag(name="translation", meaning="requests to translate a text")]


def test_null_empty_and_non_text_descriptions_are_never_offered():
    objects = [
        {"name": "a", "description": None},
        {"name": "b", "description": ""},
        {"name": "c", "description": ["dataset-tagging"]},
        {"name": "d"},
    ]
    assert select_taggable_tags(objects) == []


def test_nameless_tags_are_skipped_and_names_trimmed_and_deduplicated():
    objects = [
        {"name": None, "description": "dataset-tagging"},
        {"name": "   ", "description": "dataset-tagging"},
        {"name": " halacha ", "description": "first dataset-tagging"},
        {"name": "halacha", "description": "second dataset-tagging"},
    ]
    assert select_taggable_tags(objects) == [TaggableTag(name="halacha", meaning="first")]


def test_empty_tag_list_offers_nothing():
    assert select_taggable_tags([]) == []


@pytest.mark.parametrize(
    "name, description, reason",
    [
        ("x" * 256, "dataset-tagging", "its name is 256 characters long, over 255"),
        ("two\nlines", "dataset-tagging", "its name holds a control character"),
        ("tab\tname", "dataset-tagging", "its name holds a control character"),
        ("bell", "dataset-tagging\x07 ring", "its description holds a control character"),
        ("half \ud83d", "dataset-tagging", "its name or description holds half an emoji"),
        ("emoji", "dataset-tagging \udc4d", "its name or description holds half an emoji"),
    ],
    ids=[
        "name_too_long",
        "newline_in_name",
        "tab_in_name",
        "control_in_description",
        "half_an_emoji_in_name",
        "half_an_emoji_in_description",
    ],
)
def test_a_marked_tag_that_cannot_be_offered_safely_is_left_out_and_named(name, description, reason):
    refused = []
    objects = [{"name": name, "description": description}, {"name": "ok", "description": "dataset-tagging"}]
    tags = select_taggable_tags(objects, refused)
    assert [tag.name for tag in tags] == ["ok"]
    assert len(refused) == 1 and refused[0].name == name[:100] and refused[0].reason.startswith(reason)


def test_line_breaks_and_tabs_in_a_description_are_fine_and_collapse_in_the_meaning():
    refused = []
    (tag,) = select_taggable_tags([{"name": "halacha", "description": "Jewish law.\n\tdataset-tagging"}], refused)
    assert refused == [] and tag.meaning == "Jewish law"


def test_a_name_of_exactly_the_stored_length_is_offered():
    name = "n" * 255
    assert [tag.name for tag in select_taggable_tags([{"name": name, "description": "dataset-tagging"}])] == [name]


def test_a_tag_without_a_name_does_not_stop_the_tags_after_it():
    objects = [{"name": " ", "description": "dataset-tagging"}, {"name": "halacha", "description": "dataset-tagging"}]
    assert [tag.name for tag in select_taggable_tags(objects)] == ["halacha"]


def test_an_unmarked_tag_does_not_stop_the_marked_tags_after_it():
    objects = [
        {"name": "internal", "description": "used by the UI only"},
        {"name": "halacha", "description": "dataset-tagging"},
    ]
    assert [tag.name for tag in select_taggable_tags(objects)] == ["halacha"]


def test_the_meaning_keeps_its_own_letters_at_either_end():
    [tag] = select_taggable_tags([{"name": "x", "description": "XML questions about X. dataset-tagging"}])
    assert tag.meaning == "XML questions about X"


# --- properties -------------------------------------------------------------------------------------

marked = text.map(lambda words: words + " dataset-tagging")
#: mostly marked tags with text names (what reaches the checks), sometimes any JSON at all
tag_objects = st.one_of(
    st.fixed_dictionaries({"name": text, "description": marked}),
    st.fixed_dictionaries({"name": st.one_of(text, json_values), "description": st.one_of(marked, json_values)}),
)


@given(st.lists(tag_objects, max_size=6))
def test_any_tags_give_offered_tags_that_can_be_sent_and_stored_and_the_rest_named(objects):
    """Whatever a project tag's name and description hold (lone surrogates included), what is offered can
    go into a request (UTF-8) and a stored label (no NUL, 255 characters), and its fingerprint be taken."""
    refused = []
    tags = select_taggable_tags(objects, refused)
    for tag in tags:
        assert tag.name == tag.name.strip() and 0 < len(tag.name) <= 255
        for value in (tag.name, tag.meaning):
            value.encode("utf-8")  # no lone surrogate: a request body is UTF-8
            assert "\x00" not in value
    assert len({tag.name for tag in tags}) == len(tags)
    tagset_fingerprint(tags)
    build_system_prompt(tags).encode("utf-8")
    assert all(item.reason and len(item.name) <= 100 for item in refused)
