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
    tags = select_taggable_tags([{"name": "translation", "description": "DATASET-TAGGING: requests to translate a text"}])
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
