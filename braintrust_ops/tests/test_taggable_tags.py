import pytest

from braintrust_ops.taggable_tags import TaggableTag, select_taggable_tags


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
    ],
    ids=["name_too_long", "newline_in_name", "tab_in_name", "control_in_description"],
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


@pytest.mark.parametrize(
    "name, description, reason",
    [
        ("half\ud83demoji", "dataset-tagging", "its name holds half an emoji (a lone surrogate)"),
        ("fine", "dataset-tagging \udc00 broken", "its description holds half an emoji (a lone surrogate)"),
    ],
    ids=["in_name", "in_description"],
)
def test_a_tag_with_half_an_emoji_is_left_out_and_named_and_the_others_are_offered(name, description, reason):
    refused = []
    tags = select_taggable_tags(
        [{"name": name, "description": description}, {"name": "good", "description": "dataset-tagging"}], refused
    )
    assert [tag.name for tag in tags] == ["good"]
    assert [(tag.name, tag.reason.startswith(reason)) for tag in refused] == [(name, True)]
