import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from braintrust_ops.printable import _UNSAFE, printable
from braintrust_ops.tests.strategies import characters


def test_ansi_escapes_line_breaks_and_lone_surrogates_are_written_as_escapes():
    assert printable("Evil\x1b[2K\rHalacha\nsecond\ud83d") == "Evil\\x1b[2K\\rHalacha\\nsecond\\ud83d"


def test_bidi_overrides_and_c1_controls_are_made_visible():
    assert printable("abc\u202edef\u2066\x9b\u2028") == "abc\\u202edef\\u2066\\x9b\\u2028"


def test_hebrew_emoji_and_their_joiners_are_left_as_they_are():
    text = "שלום \u200f👨\u200d👩\u200d👧 ok"
    assert printable(text) == text


def test_a_non_text_value_is_printed_as_its_text_and_limit_cuts_the_original():
    assert printable(None) == "None" and printable(12345) == "12345"
    assert printable("ab\ncd", limit=3) == "ab\\n"


@given(st.text())
def test_printable_text_is_one_line_encodable_and_free_of_controls_whatever_the_input(text):
    shown = printable(text)
    shown.encode("utf-8")  # no lone surrogate left
    assert len(shown.splitlines()) <= 1
    assert not any(unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") for char in shown)
    assert not any("\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069" for char in shown)


@given(st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp", "Cf"])))
def test_ordinary_text_is_printed_unchanged(text):
    assert printable(text) == text


@given(st.text(characters))  # lone surrogates too: Hypothesis leaves them out by default
def test_each_unsafe_character_is_written_as_pythons_unicode_escape_of_it(text):
    expected = "".join(
        char.encode("unicode_escape").decode("ascii") if _UNSAFE.fullmatch(char) else char for char in text
    )
    assert printable(text) == expected
