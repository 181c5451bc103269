"""Every log row made storable on the way in, or refused with a reason (pure functions)."""

import pytest

from braintrust_ops.storable import (
    MAX_ID_LENGTH,
    MAX_JSON_DEPTH,
    Unstorable,
    readable_id,
    storable_id,
    storable_json,
    storable_text,
)


def test_a_nul_character_is_kept_as_its_escape():
    assert storable_text("before\x00after") == "before\\u0000after"


def test_a_lone_surrogate_is_kept_as_its_escape():
    assert storable_text("half an emoji \ud83d") == "half an emoji \\ud83d"


def test_ordinary_text_hebrew_and_emoji_are_untouched():
    text = "שבת שלום 🕯️ \\u0000 as typed"
    assert storable_text(text) is text


def test_json_strings_and_keys_are_made_storable_at_every_level():
    value = {"a\x00": ["x\x00", {"b": "\ud83d"}], "n": 1, "f": 0.5, "t": True, "none": None}
    assert storable_json(value) == {
        "a\\u0000": ["x\\u0000", {"b": "\\ud83d"}],
        "n": 1,
        "f": 0.5,
        "t": True,
        "none": None,
    }


def _nested(depth: int):
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_json_nested_up_to_the_limit_is_kept():
    assert storable_json(_nested(MAX_JSON_DEPTH)) == _nested(MAX_JSON_DEPTH)


def test_json_nested_past_the_limit_is_refused_saying_so():
    with pytest.raises(Unstorable, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        storable_json({"input": _nested(MAX_JSON_DEPTH)})


def test_an_id_is_kept_exactly_as_sent_surrounding_spaces_included():
    assert [storable_id(raw, field="id") for raw in (" abc-123 ", "abc-123", "   ")] == [" abc-123 ", "abc-123", "   "]
    assert storable_id(None, field="root_span_id") == ""
    assert storable_id("x" * MAX_ID_LENGTH, field="id") == "x" * MAX_ID_LENGTH


@pytest.mark.parametrize(
    "raw, kind",
    [(12345, "a number"), (1.5, "a number"), (True, "a boolean"), ({"id": "a"}, "an object"), (["a"], "an array")],
)
def test_an_id_that_is_not_a_string_is_refused_saying_what_it_is(raw, kind):
    with pytest.raises(Unstorable, match=f"its id is {kind}, not a string"):
        storable_id(raw, field="id")


def test_an_id_is_read_by_people_as_its_json_text_so_type_and_spaces_show():
    assert [readable_id(raw) for raw in (12345, "12345", " a ", "שבת", "a\x00\ud83d")] == [
        "12345",
        '"12345"',
        '" a "',
        '"שבת"',
        '"a\\u0000\\ud83d"',
    ]
    assert len(readable_id("x" * 500)) == 100


def test_an_id_too_long_to_store_is_refused_naming_the_field_and_the_length():
    with pytest.raises(Unstorable, match=f"root_span_id is {MAX_ID_LENGTH + 1} characters long"):
        storable_id("x" * (MAX_ID_LENGTH + 1), field="root_span_id")


@pytest.mark.parametrize("raw", ["a\x00b", "a\ud83db"])
def test_an_id_that_would_have_to_change_to_be_stored_is_refused(raw):
    with pytest.raises(Unstorable, match="NUL character or half an emoji"):
        storable_id(raw, field="id")


def test_dicts_nested_just_under_the_limit_are_storable():
    value: object = "leaf"
    for _ in range(MAX_JSON_DEPTH):
        value = {"k": value}
    assert storable_json(value) == value
