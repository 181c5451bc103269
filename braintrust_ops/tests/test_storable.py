"""Every log row made storable on the way in, or refused with a reason (pure functions)."""

import pytest
from hypothesis import assume, given

from braintrust_ops.storable import (
    FLOAT_KEY,
    MAX_ID_LENGTH,
    MAX_JSON_DEPTH,
    OBJECT_KEY,
    STRING_KEY,
    WRAPPER_KEYS,
    Unstorable,
    escape_text,
    is_storable_text,
    original_json,
    readable_id,
    storable_id,
    storable_json,
    unescape_text,
)
from braintrust_ops.tests.strategies import json_values, text


def test_text_postgresql_takes_is_stored_as_it_is():
    value = {"text": "שבת שלום 🕯️ \\u0000 as typed, a \\ backslash", "n": 1, "f": 0.5, "t": True, "none": None}
    assert storable_json(value) == value


@pytest.mark.parametrize(
    "text",
    [
        "before\x00after",
        "half an emoji \ud83d",
        "\udc4d tail",
        "a NUL\x00 and a typed \\u0000 and a typed \\\\u0000",
        "\\ud83d typed, \ud83d real",
    ],
)
def test_text_postgresql_refuses_is_wrapped_and_comes_back_exactly(text):
    stored = storable_json(text)
    assert stored == {STRING_KEY: escape_text(text)} and is_storable_text(stored[STRING_KEY])
    assert original_json(stored) == text


def test_a_nul_and_the_six_characters_a_user_typed_for_it_stay_two_different_texts():
    real, typed = "a\x00b", "a\\u0000b"
    assert storable_json(typed) == typed
    assert original_json(storable_json(real)) == real and original_json(storable_json(typed)) == typed


def test_keys_that_only_differ_by_what_postgresql_refuses_both_keep_their_values():
    value = {"a\x00": 1, "a\\u0000": 2, "a": 3}
    stored = storable_json(value)
    assert set(stored) == {OBJECT_KEY}
    assert original_json(stored) == value


def test_a_float_postgresql_would_print_as_an_integer_comes_back_a_float():
    value = {"big": 5.844065794252167e16, "small": 1.5e-7, "int": 58440657942521670}
    stored = storable_json(value)
    assert stored == {"big": {FLOAT_KEY: "5.844065794252167e+16"}, "small": 1.5e-7, "int": 58440657942521670}
    assert original_json(stored) == value and type(original_json(stored)["big"]) is float


def test_the_wrapping_of_floats_starts_exactly_where_python_writes_an_exponent():
    # repr(1e16) is "1e+16"; the float just below it is written with a decimal point.
    assert storable_json([1e16, 9999999999999998.0]) == [{FLOAT_KEY: "1e+16"}, 9999999999999998.0]


@pytest.mark.parametrize(
    "look_alike",
    [
        {FLOAT_KEY: "1e+16"},
        {STRING_KEY: "a\\u0000"},
        {OBJECT_KEY: [["k", "v"]]},
        {STRING_KEY: {STRING_KEY: "x"}},
        [{OBJECT_KEY: []}],
    ],
)
def test_a_users_object_that_looks_like_a_wrapper_is_never_read_back_as_one(look_alike):
    assert original_json(storable_json(look_alike)) == look_alike


def test_an_object_with_a_wrapper_key_beside_others_is_data_and_stored_as_it_is():
    value = {STRING_KEY: "x", "other": 1}
    assert storable_json(value) == value and original_json(value) == value


def test_wrappers_nest_at_every_level():
    value = {"a\x00": ["x\x00", {"b": "\ud83d"}], "list": [[{"c\ud83d": None}]]}
    stored = storable_json(value)
    assert all(map(is_storable_text, _texts(stored))) and original_json(stored) == value


def _texts(value):
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _texts(item)


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


def test_an_id_of_exactly_the_readable_length_is_shown_whole():
    assert readable_id("x" * 98) == '"' + "x" * 98 + '"'  # 100 characters with its quotes


def test_an_id_of_a_type_json_does_not_have_is_shown_and_named_as_python_sees_it():
    # Rows come parsed from JSON; only a caller's mistake passes a set or a tuple.
    assert readable_id({1}) == "{1}"
    with pytest.raises(Unstorable, match="its id is tuple, not a string"):
        storable_id(("a",), field="id")


def test_escaping_doubles_a_backslash_and_writes_nul_and_a_lone_surrogate_as_unicode_escapes():
    # The stored form: rows already stored this way are read back by unescape_text.
    assert escape_text("a\\b\x00\ud83d") == "a\\\\b\\u0000\\ud83d"


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


# --- properties -------------------------------------------------------------------------------------


@given(json_values)
def test_any_json_value_is_stored_in_a_form_postgresql_takes_and_read_back_exactly(value):
    stored = storable_json(value)
    assert all(map(is_storable_text, _texts(stored)))
    assert original_json(stored) == value


@given(json_values)
def test_a_value_postgresql_takes_as_it_is_is_stored_as_it_is(value):
    if (
        all(map(is_storable_text, _texts(value)))
        and not any(map(_looks_like_a_wrapper, _objects(value)))
        and not any(isinstance(item, float) and abs(item) >= 1e16 for item in _scalars(value))
    ):
        assert storable_json(value) == value


@given(text)
def test_escaping_text_is_reversible_and_gives_storable_text(value):
    assert unescape_text(escape_text(value)) == value and is_storable_text(escape_text(value))


@given(json_values, json_values)
def test_two_different_values_are_never_stored_alike(first, second):
    assume(first != second)
    assert storable_json(first) != storable_json(second)


@given(text)
def test_any_text_is_an_id_exactly_or_refused_with_a_reason(raw):
    try:
        assert storable_id(raw, field="id") == raw
    except Unstorable as exc:
        assert str(exc).startswith("its id ")


def _objects(value):
    if isinstance(value, dict):
        yield value
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            yield from _objects(item)


def _scalars(value):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    else:
        yield value


def _looks_like_a_wrapper(value: dict) -> bool:
    return len(value) == 1 and next(iter(value)) in WRAPPER_KEYS


def test_an_object_of_one_member_holding_pairs_is_read_back_as_it_is_not_as_an_object_wrapper():
    # Only the object wrapper's own key makes a list of pairs an object: a user's {"turns": [[...]]} is data.
    value = {"turns": [["user", "Is it Shabbat?"], ["assistant", "Yes"]]}
    assert storable_json(value) == value and original_json(storable_json(value)) == value


def test_an_object_of_one_text_member_is_read_back_as_it_is_even_when_the_text_reads_as_a_number():
    assert original_json(storable_json({"score": "1.5"})) == {"score": "1.5"}


def test_an_object_with_a_key_that_is_not_text_is_refused():
    with pytest.raises(Unstorable, match="^it holds an object with a key that is not text$"):
        storable_json({1: "a"})
