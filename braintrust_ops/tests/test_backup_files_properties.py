"""Properties of the backup's cells, lines and structures for any input Braintrust could send: chat text is
user input, so the text strategy reaches for what nobody types on purpose (lone surrogates, NUL, control
characters, right-to-left marks, emoji sequences) beside whatever Unicode Hypothesis draws.

Profiles (examples per test, derandomized in CI): ``hypothesis_profiles.py``.
"""

import csv
import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from braintrust_ops.backup_files import (
    CSV_HEADER,
    LOG_COLUMNS,
    BackupFile,
    csv_cell,
    csv_line,
    csv_record,
    jsonl_line,
    structure_json,
)
from braintrust_ops.tests.backup_readers import read_csv, read_jsonl

# What makes a spreadsheet evaluate a cell, written out here (OWASP's list, which the README documents) rather
# than read from the module: a rule that lost a character must fail these tests, not agree with them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Pieces of text worth meeting often; Hypothesis would seldom draw them from all of Unicode on its own.
AWKWARD_PIECES = [
    *("\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d"),  # NUL; lone surrogates (half an emoji)
    *("\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1c", "\x1f", "\x7f", "\x85"),  # control characters
    *("\t", "\r", "\n", "\r\n", "\u2028", "\u2029"),  # line breaks, in every sense some reader gives them
    *("=", "+", "-", "@", "'", '"', ",", ";", "\\", " "),
    *("\u200f", "\u202e", "\u2067", "\u200b", "\ufeff"),  # right-to-left mark and overrides, zero width, BOM
    *("שלום", "مرحبا", "נטילת ידיים?"),  # right-to-left text
    *("🙏", "🕯️", "👨\u200d👩\u200d👧", "🇮🇱"),  # emoji, a ZWJ sequence, a flag
    *('=HYPERLINK("http://evil.example","x")', "-0.5", "+972", "@SUM(A1)", "1e5", "NaN", "Infinity", "null"),
    *("true", "[1]", '{"a":1}'),
]
texts = st.lists(st.sampled_from(AWKWARD_PIECES) | st.characters(exclude_categories=()), max_size=12).map("".join)
huge_integers = st.integers(min_value=2**64, max_value=2**256) | st.integers(
    min_value=-(2**256), max_value=-(2**63) - 1
)
scalars = st.none() | st.booleans() | st.integers() | huge_integers | st.floats() | texts
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=10,
)


def as_parsed(value: Any) -> Any:
    """The value as parsing JSON gives it, the only way a row reaches the backup: a high surrogate followed
    by a low one is one character there (``"\\ud83d\\ude4f"`` is 🙏), never two; lone ones stay lone."""
    return json.loads(json.dumps(value))


structures = (st.lists(json_values, max_size=4) | st.dictionaries(texts, json_values, max_size=4)).map(as_parsed)
rows = st.dictionaries(st.sampled_from(LOG_COLUMNS) | texts, json_values, max_size=6).map(as_parsed)


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses NaN and Infinity, which standard JSON (and jq, BigQuery, ...) does not have."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not standard JSON")

    return json.loads(text, parse_constant=refuse)


def with_non_finite_as_null(value: Any) -> Any:
    """The value as the module documents it comes back from JSON: NaN and infinities inside it as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: with_non_finite_as_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_non_finite_as_null(item) for item in value]
    return value


def as_in_the_file(text: str) -> str:
    """What text reads back as from the file: UTF-8, a lone surrogate written as its escape ``\\udXXX``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def string_leaves(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value, *(leaf for item in value.values() for leaf in string_leaves(item))]
    if isinstance(value, list):
        return [leaf for item in value for leaf in string_leaves(item)]
    return []


# --- CSV cells ------------------------------------------------------------------------------------


@given(json_values)
@example(-0.5)
@example(float("-inf"))
@example("\t=cmd")
def test_no_cell_starts_with_a_formula_character_unless_it_holds_a_real_number(value):
    cell = csv_cell(value)
    if cell.startswith(FORMULA_STARTS):
        assert value.__class__ in (int, float) and math.isfinite(value), (value, cell)
        assert json.loads(cell) == value  # a number a spreadsheet reads as a number, which holds no formula


@given(texts)
def test_text_cell_is_the_text_or_the_text_after_one_quote_exactly_when_it_could_start_a_formula(text):
    cell = csv_cell(text)
    if text.startswith(FORMULA_STARTS):
        assert cell == "'" + text  # neutralised: undo by dropping the one leading quote
    else:
        assert cell == text


@given(st.lists(texts, min_size=2, max_size=6))
def test_csv_line_reads_back_cell_for_cell_and_is_what_the_csv_module_writes(cells):
    line = csv_line(cells)
    written = io.StringIO(newline="")
    csv.writer(written).writerow(cells)
    assert line == written.getvalue()
    assert list(csv.reader(io.StringIO(line, newline=""))) == [cells]


@given(st.lists(rows, min_size=1, max_size=3))
def test_csv_file_reads_back_every_cell_as_the_cell_written(page):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "backup.csv"
        with BackupFile(path) as backup:
            backup.write_rows(page)
            backup.commit()
        read = read_csv(path)
    assert len(read) == len(page)
    for row, read_row in zip(page, read, strict=True):
        assert list(read_row) == list(CSV_HEADER)
        assert list(read_row.values()) == [as_in_the_file(cell) for cell in csv_record(row)]


@given(rows)
def test_fields_outside_the_columns_read_back_from_the_extra_cell(row):
    extra = csv_record(row)[-1]
    unknown = {key: value for key, value in row.items() if key not in LOG_COLUMNS}
    if not unknown:
        assert extra == ""
    else:
        decoded = json.loads(extra)
        assert decoded == with_non_finite_as_null(unknown)
        assert list(decoded) == sorted(unknown)


# --- JSON lines and structures --------------------------------------------------------------------


@given(rows)
@example({"score": float("nan"), "big": 2**70})  # NaN beside what orjson refuses: the fallback encoder's turn
@example({"text": "half an emoji \ud83d", "inf": float("inf")})
@example({"line separator": "a\u2028b\u2029c\x85d", "nul": "\x00"})
def test_jsonl_line_is_one_line_of_standard_json_that_reads_back_as_the_row(row):
    data = jsonl_line(row).encode("utf-8", "backslashreplace")  # as BackupFile writes it
    text = data.decode("utf-8")  # strict: the file is valid UTF-8
    assert text.endswith("\n") and text.count("\n") == 1
    assert strict_json(text) == with_non_finite_as_null(row)


@given(st.lists(rows, max_size=3))
@example([{"input": "a\u2028b\u2029c\x85d\x1ce", "output": None}])  # kept whole: a line ends at "\n" only
def test_jsonl_file_reads_back_row_for_row(page):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "backup.jsonl"
        with BackupFile(path, fmt="jsonl") as backup:
            backup.write_rows(page)
            backup.commit()
        assert read_jsonl(path) == [with_non_finite_as_null(row) for row in page]


@given(structures)
@example([float("nan"), 2**64])
@example({"\ud800": [float("-inf")]})
def test_structure_json_is_standard_json_of_the_value_with_text_left_readable(value):
    text = structure_json(value)
    assert strict_json(text) == with_non_finite_as_null(value)
    for leaf in string_leaves(value):
        if not any(char < " " or char in '"\\' for char in leaf):
            assert f'"{leaf}"' in text  # Hebrew, emoji and the rest as they are, not \u escapes
