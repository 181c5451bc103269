"""The dataset marker and the matching step: the seed review's cases (sections 2D, 4.3) not pinned elsewhere."""

import pytest

from braintrust_ops.subscriptions import Subscription, match_logs_to_datasets, parse_relevant_tags


@pytest.mark.parametrize(
    "description, expected",
    [
        (r'[[relevant_tags: ["say \"hi\"", "plain"]]]', {'say "hi"', "plain"}),
        ('[[relevant_tags: ["a]]b", "c"]]]', {"a]]b", "c"}),
        (r'[[relevant_tags: ["\u05d4\u05dc\u05db\u05d4"]]]', {"הלכה"}),
        ('Notes with [brackets] and "quotes".\n[[relevant_tags: ["halacha"]]]', {"halacha"}),
    ],
    ids=["escaped_quotes", "closing_brackets_inside_a_name", "json_unicode_escapes", "brackets_and_quotes_around"],
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
