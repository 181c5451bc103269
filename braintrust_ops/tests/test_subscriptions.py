import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.subscriptions import (
    MalformedMarker,
    Subscription,
    match_logs_to_datasets,
    parse_relevant_tags,
    subscriptions_from_datasets,
)
from braintrust_ops.tests.strategies import json_values, text


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
        ('[[relevant_tags: [["tag1"]]]]', r'holds \["tag1"\], which is not a tag name'),
        (
            '[[relevant_tags: ["tag1"] and more]]',
            r"^the tag list is not closed by \]\] \(or is followed by more than spaces before it\)$",
        ),
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
        "text_after_the_list",
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


# --- The seed review's cases (sections 2D, 4.3) --------------------------------------------------


@pytest.mark.parametrize(
    "description, expected",
    [
        (r'[[relevant_tags: ["say \"hi\"", "plain"]]]', {'say "hi"', "plain"}),
        ('[[relevant_tags: ["a]]b", "c"]]]', {"a]]b", "c"}),
        ('[[relevant_tags: ["a] ]]", "]]]"]]]', {"a] ]]", "]]]"}),
        (r'[[relevant_tags: ["\u05d4\u05dc\u05db\u05d4"]]]', {"הלכה"}),
        ('Notes with [brackets] and "quotes".\n[[relevant_tags: ["halacha"]]]', {"halacha"}),
    ],
    ids=[
        "escaped_quotes",
        "closing_brackets_inside_a_name",
        "a_name_ending_like_the_marker",
        "json_unicode_escapes",
        "brackets_and_quotes_around",
    ],
)
def test_marker_holding_json_escapes_and_brackets_is_read_as_json(description, expected):
    assert parse_relevant_tags(description) == frozenset(expected)


def test_a_million_log_tag_pairs_match_in_one_pass_with_exact_results():
    """The review's "1M+ records in matching": the (log, tag) pairs come from a generator, which can be read
    only once, so exact counts mean the matching needs a single pass over them."""
    tags = [f"tag-{index}" for index in range(50)]
    logs = 500_000

    def pairs():
        for number in range(logs):
            log_id = str(number)
            yield log_id, tags[number % 50]
            yield log_id, tags[(number * 7) % 50]

    subscriptions = [
        Subscription(dataset_id=f"d{index}", dataset_name=f"d{index}", tags=frozenset({tags[index]}))
        for index in range(5)
    ]
    subscriptions.append(Subscription(dataset_id="both", dataset_name="both", tags=frozenset({tags[1], tags[7]})))
    matches = match_logs_to_datasets(pairs(), subscriptions)

    def expected_count(wanted: set[int]) -> int:
        # number and number + 50 carry the same tags, so count one block of 50 and scale.
        per_block = sum(1 for residue in range(50) if {residue, (residue * 7) % 50} & wanted)
        return per_block * (logs // 50)

    for index in range(5):
        assert len(matches[f"d{index}"]) == expected_count({index})
    assert len(matches["both"]) == expected_count({1, 7})
    assert "1" in matches["d1"] and "1" in matches["both"] and "2" not in matches["d1"] | matches["both"]


@pytest.mark.parametrize(
    "description, reason",
    [
        (
            "relevant_tags: tag1",
            'mentions relevant_tags but has no marker of the form [[relevant_tags: ["tag", ...]]]',
        ),
        ('[[relevant_tags: ["  "]]]', "the list holds an empty tag name"),
    ],
    ids=["no_marker", "empty_name"],
)
def test_skip_reason_is_a_whole_sentence_for_the_dataset_owner(description, reason):
    with pytest.raises(MalformedMarker) as caught:
        parse_relevant_tags(description)
    assert str(caught.value) == reason


def test_datasets_without_an_id_or_with_a_bad_marker_do_not_stop_the_ones_after_them():
    subscriptions, skipped = subscriptions_from_datasets(
        [
            {"name": "no id", "description": '[[relevant_tags: ["a"]]]'},
            {"id": "d-bad", "name": "bad", "description": "[[relevant_tags: [a]]]"},
            {"id": "d-good", "name": "good", "description": '[[relevant_tags: ["a"]]]'},
        ]
    )
    assert subscriptions == [Subscription(dataset_id="d-good", dataset_name="good", tags=frozenset({"a"}))]
    assert [(skip.dataset_id, skip.dataset_name) for skip in skipped] == [("d-bad", "bad")]


# --- properties -------------------------------------------------------------------------------------

tag_names = text.filter(lambda name: name.strip())
spaces = st.text(" \n\t", max_size=3)
around = text.filter(lambda words: "relevant_tags" not in words.lower())


@given(st.lists(tag_names, min_size=1, max_size=4), around, around, spaces, spaces, spaces)
def test_a_marker_written_any_way_gives_back_its_tags(tags, before, after, gap1, gap2, gap3):
    """Any tag names (lone surrogates, brackets, quotes included: the list is JSON), any spacing
    inside the marker, any text around it."""
    marker = f"[[{gap1}relevant_tags{gap2}:{gap1}{json.dumps(tags, ensure_ascii=False)}{gap3}]]"
    assert parse_relevant_tags(before + marker + after) == frozenset(tag.strip() for tag in tags)


@given(st.one_of(text, json_values))
def test_any_description_gives_tags_none_or_a_malformed_marker_never_anything_else(description):
    try:
        tags = parse_relevant_tags(description)
    except MalformedMarker as exc:
        assert str(exc)
        return
    assert tags is None or all(isinstance(tag, str) and tag and tag == tag.strip() for tag in tags)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"id": st.one_of(st.none(), text), "name": st.none() | text, "description": st.none() | text}
        )
    )
)
def test_any_dataset_listing_is_split_into_subscriptions_and_skipped_ones_never_raising(datasets):
    subscriptions, skipped = subscriptions_from_datasets(datasets)
    assert len(subscriptions) + len(skipped) <= len(datasets)
    assert all(subscription.tags and subscription.dataset_id for subscription in subscriptions)
    assert all(item.reason for item in skipped)
