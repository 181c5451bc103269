"""agreement: Claude against people per tag, with Wilson intervals (examples and properties)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.agreement import Judged, tag_agreement, wilson_interval


def judged(claude, person, model="haiku", version="v1"):
    return Judged(model=model, prompt_version=version, claude=frozenset(claude), person=frozenset(person))


def test_counts_precision_recall_and_f1_per_tag():
    logs = [judged({"a"}, {"a"}), judged({"a", "b"}, {"a"}), judged(set(), {"a", "b"}), judged(set(), set())]
    by_tag = {row.tag: row for row in tag_agreement(logs, ["a", "b"])}
    a, b = by_tag["a"], by_tag["b"]
    assert (a.reviewed, a.true_positives, a.false_positives, a.false_negatives) == (4, 2, 0, 1)
    assert (a.precision, a.recall) == (1.0, 2 / 3) and a.f1 == pytest.approx(0.8)
    assert (b.true_positives, b.false_positives, b.false_negatives) == (0, 1, 1)
    assert (b.precision, b.recall, b.f1) == (0.0, 0.0, 0.0)


def test_each_model_and_prompt_version_is_measured_apart():
    logs = [
        judged({"a"}, {"a"}, model="haiku"),
        judged({"a"}, set(), model="sonnet"),
        judged({"a"}, {"a"}, version="v2"),
    ]
    keys = [(row.model, row.prompt_version, row.precision) for row in tag_agreement(logs, ["a"])]
    assert keys == [("haiku", "v1", 1.0), ("haiku", "v2", 1.0), ("sonnet", "v1", 0.0)]


def test_a_figure_without_trials_has_no_value_or_interval():
    (row,) = tag_agreement([judged(set(), {"a"})], ["a"])
    assert row.precision is None and row.precision_interval is None and row.recall == 0.0


def test_the_wilson_interval_matches_the_published_example():
    # Brown, Cai and DasGupta (2001): x = 0 of n = 20 gives the Wilson upper bound 0.161 at 95%.
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


@given(trials=st.integers(1, 10_000), data=st.data())
def test_the_interval_holds_the_proportion_and_stays_within_zero_and_one(trials, data):
    successes = data.draw(st.integers(0, trials))
    low, high = wilson_interval(successes, trials)
    assert 0.0 <= low <= successes / trials <= high <= 1.0
    assert math.isfinite(low) and math.isfinite(high)


tags = st.frozensets(st.sampled_from(["a", "b", "c"]))


@given(st.lists(st.tuples(tags, tags), max_size=30))
def test_the_counts_add_up_to_the_logs_that_carry_each_tag(pairs):
    logs = [judged(claude, person) for claude, person in pairs]
    for row in tag_agreement(logs, ["a", "b", "c"]):
        assert row.true_positives + row.false_positives == sum(row.tag in c for c, _ in pairs)
        assert row.true_positives + row.false_negatives == sum(row.tag in p for _, p in pairs)
        assert row.reviewed == len(pairs)
