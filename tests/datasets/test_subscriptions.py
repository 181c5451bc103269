import pytest

from braintrust_ops.subscriptions import (
    MalformedMarker,
    Subscription,
    match_logs_to_datasets,
    parse_relevant_tags,
    subscriptions_from_datasets,
)


@pytest.mark.parametrize(
    "description, expected",
    [
        ('[[relevant_tags: ["tag1", "tag2"]]]', {"tag1", "tag2"}),
        ('[[relevant_tags:["tag1","tag2"]]]', {"tag1", "tag2"}),
        # The first version's regex missed this one (seed review, section 11, issue 1).
        ('[[relevant_tags: [ "tag1" , "tag2" ]  ]]', {"tag1", "tag2"}),
        ('[[ relevant_tags : [ "tag1" ] ]]', {"tag1"}),
        ('Evaluation set.\n[[relevant_tags:\n  ["tag1",\n   "tag2"]\n]]\nOwner: data team', {"tag1", "tag2"}),
        ('prefix text [[relevant_tags: ["halacha"]]] suffix text', {"halacha"}),
        ('[[relevant_tags: ["  padded  ", "padded"]]]', {"padded"}),
        ('[[relevant_tags: ["dup", "dup", "dup"]]]', {"dup"}),
        ('[[relevant_tags: ["תרגום", "emoji 📜"]]]', {"תרגום", "emoji 📜"}),
    ],
    ids=[
        "canonical",
        "no_spaces",
        "spaces_before_closing_brackets",
        "spaces_inside_brackets",
        "newlines_inside_marker",
        "marker_inside_other_text",
        "names_are_trimmed",
        "duplicates_collapse",
        "unicode_names",
    ],
)
def test_valid_marker_variants_are_parsed(description, expected):
    assert parse_relevant_tags(description) == frozenset(expected)


def test_empty_list_subscribes_to_nothing():
    assert parse_relevant_tags("[[relevant_tags: []]]") == frozenset()


@pytest.mark.parametrize("description", [None, "", "A dataset with no marker at all", 42])
def test_description_without_marker_has_no_subscription(description):
    assert parse_relevant_tags(description) is None


@pytest.mark.parametrize(
    "description, reason",
    [
        ('[[relevant_tags: ["tag1", ]]]', "not valid JSON"),
        ("[[relevant_tags: [1, 2, 3]]]", "holds 1, which is not a tag name"),
        ('[[relevant_tags: [["tag1"]]]]', "not valid JSON"),
        ('[[relevant_tags: ["tag1", null]]]', "holds null, which is not a tag name"),
        ('[[relevant_tags: ["", "tag"]]]', "empty tag name"),
        ('[[relevant_tags: ["   "]]]', "empty tag name"),
        ("[[relevant_tags: [tag1, tag2]]]", "not valid JSON"),
        ('[relevant_tags: ["tag1"]]', "has no marker"),
        ('[[relevant_tags: {"a": 1}]]', "has no marker"),
        ('[[relevant_tags: ["ok"]]] and [[relevant_tags: [3]]]', "holds 3, which is not a tag name"),
    ],
    ids=[
        "trailing_comma",
        "numbers",
        "nested_arrays",
        "null_item",
        "empty_string",
        "blank_string",
        "unquoted_names",
        "single_brackets",
        "object_instead_of_list",
        "one_of_several_markers_malformed",
    ],
)
def test_malformed_marker_is_rejected_with_a_reason(description, reason):
    with pytest.raises(MalformedMarker, match=reason):
        parse_relevant_tags(description)


def test_several_markers_in_one_description_are_united():
    description = '[[relevant_tags: ["a"]]] more text [[relevant_tags: ["b", "a"]]]'
    assert parse_relevant_tags(description) == frozenset({"a", "b"})


def test_malformed_dataset_is_skipped_with_its_name_and_others_still_subscribe():
    datasets = [
        {"id": "d1", "name": "Halacha evals", "description": '[[relevant_tags: ["halacha"]]]'},
        {"id": "d2", "name": "Broken", "description": '[[relevant_tags: ["x", ]]]'},
        {"id": "d3", "name": "No marker", "description": None},
        {"id": "d4", "name": "Empty", "description": "[[relevant_tags: []]]"},
    ]
    subscriptions, skipped = subscriptions_from_datasets(datasets)
    assert subscriptions == [Subscription(dataset_id="d1", dataset_name="Halacha evals", tags=frozenset({"halacha"}))]
    assert [(item.dataset_name, "valid JSON" in item.reason) for item in skipped] == [("Broken", True)]


def _subscription(dataset_id, *tags):
    return Subscription(dataset_id=dataset_id, dataset_name=dataset_id, tags=frozenset(tags))


def test_one_log_goes_to_every_dataset_sharing_a_tag():
    matches = match_logs_to_datasets(
        [("log1", "halacha"), ("log1", "hebrew"), ("log2", "translation")],
        [_subscription("d1", "halacha"), _subscription("d2", "hebrew", "translation"), _subscription("d3", "other")],
    )
    assert matches == {"d1": {"log1"}, "d2": {"log1", "log2"}, "d3": set()}


def test_log_matching_a_dataset_through_two_tags_is_listed_once():
    matches = match_logs_to_datasets([("log1", "a"), ("log1", "b")], [_subscription("d1", "a", "b")])
    assert matches == {"d1": {"log1"}}


def test_no_logs_gives_empty_matches_and_no_datasets_gives_none():
    assert match_logs_to_datasets([], [_subscription("d1", "a")]) == {"d1": set()}
    assert match_logs_to_datasets([("log1", "a")], []) == {}


def test_tags_that_match_no_dataset_are_ignored():
    assert match_logs_to_datasets([("log1", "zzz")], [_subscription("d1", "a")]) == {"d1": set()}


def test_a_tag_string_is_never_split_into_characters():
    # The first version did set("tag1") and matched datasets subscribed to "t", "a", "g" or "1".
    matches = match_logs_to_datasets([("log1", "tag1")], [_subscription("d1", "t"), _subscription("d2", "tag1")])
    assert matches == {"d1": set(), "d2": {"log1"}}
