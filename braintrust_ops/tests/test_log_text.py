"""A log's input and output as text for Claude. The long-text and Unicode cuts are pinned in
test_tagging_prompt.py, where the seed review's map points."""

import json
from datetime import date
from decimal import Decimal

from hypothesis import given

from braintrust_ops.log_text import TRUNCATION_NOTE, render, truncate
from braintrust_ops.tests.strategies import text as any_text


def test_short_text_is_left_whole():
    assert truncate("short", 500) == "short"


def test_text_exactly_at_the_limit_is_left_whole():
    assert truncate("x" * 500, 500) == "x" * 500


def test_limit_too_small_for_the_note_cuts_without_it_and_stays_within_the_limit():
    assert truncate("x" * 100, 5) == "xxxxx"
    assert truncate("x" * 100, len(TRUNCATION_NOTE)) == TRUNCATION_NOTE


def test_render_keeps_strings_as_they_are_and_serialises_odd_values():
    assert render("plain text") == "plain text"
    assert json.loads(render({"when": 1.5, "ok": True})) == {"when": 1.5, "ok": True}


def test_missing_value_is_rendered_as_the_empty_marker():
    assert render(None) == "(empty)"


def test_values_json_cannot_hold_are_rendered_as_their_text_instead_of_failing():
    assert render({"day": date(2026, 11, 28), "price": Decimal("1.50")}) == '{"day": "2026-11-28", "price": "1.50"}'


def test_hebrew_in_a_structure_stays_readable_not_escaped():
    assert render(["שבת"]) == '["שבת"]'


def test_half_an_emoji_anywhere_in_a_structure_is_rendered_as_its_escape_so_the_text_can_be_sent():
    text = render({"question": "half \ud83d an emoji", "\udc4d": [1]})
    assert text.encode("utf-8") and "half \\ud83d an emoji" in text and '"\\udc4d": [1]' in text


@given(text=any_text)
def test_any_text_renders_as_utf_8_can_carry_it_with_only_its_lone_surrogates_escaped(text):
    # Python's own escape of what UTF-8 cannot carry is the reference: the same text, the same escapes.
    assert render(text) == text.encode("utf-8", "backslashreplace").decode("utf-8")
    assert isinstance(render(text).encode("utf-8"), bytes)  # raises when a character has no UTF-8 form
