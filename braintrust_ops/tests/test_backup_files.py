"""The backup file on its own: cells, columns, formats, atomic replacement and clean failure."""

import csv
import errno
import fcntl
import gzip
import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest

from braintrust_ops.backup_files import (
    CSV_HEADER,
    EXCEL_CELL_LIMIT,
    FORMULA_PREFIXES,
    TEMP_NAME,
    BackupFile,
    BackupFileError,
    backup_target_check,
    csv_cell,
    csv_line,
    csv_record,
    default_backup_name,
    jsonl_line,
    neutralise_formula,
    special_file_kind,
    stale_temporaries_remove,
    structure_json,
)
from braintrust_ops.tests.backup_readers import leftovers, read_backup_bytes, read_csv, read_csv_header, read_jsonl
from braintrust_ops.tests.paths import HOST_ROOT
from braintrust_ops.tests.special_files import SPECIAL_KINDS, make_special_file, snapshot

HEBREW = "מה ההלכה לגבי נטילת ידיים? 🙏"


def log(**fields) -> dict:
    base = {"id": "log-1", "created": "2026-11-23T02:00:00.000Z", "span_id": "s-1", "root_span_id": "s-1"}
    return {**base, **fields}


def write(path: Path, rows: list[dict], *, fmt: str = "csv", gzip: bool = False) -> BackupFile:
    with BackupFile(path, fmt=fmt, gzip=gzip) as backup:
        backup.write_rows(rows)
        backup.commit()
    return backup


# --- cells ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["=1+1", "+972501234567", "-2+3", "@SUM(A1:A2)", "\t=cmd", "\r=cmd"])
def test_cell_starting_with_a_formula_character_is_prefixed_with_quote(text):
    assert csv_cell(text) == "'" + text


def test_formula_holding_quotes_and_commas_is_neutralised_inside_the_csv_quoting():
    # The quote must land inside the quoted field, where the spreadsheet reads it as the cell's first character.
    line = csv_line([csv_cell('=HYPERLINK("http://evil.example","click")')])
    assert line == '"\'=HYPERLINK(""http://evil.example"",""click"")"\r\n'


@pytest.mark.parametrize("text", ["hello", " =not at start", "a=b", "", "'already quoted", HEBREW])
def test_text_that_cannot_start_a_formula_is_left_alone(text):
    assert csv_cell(text) == text


def test_negative_number_stays_a_number_but_negative_number_text_is_neutralised():
    assert csv_cell(-0.5) == "-0.5"
    assert csv_cell("-0.5") == "'-0.5"


def test_non_finite_number_is_neutralised_like_text():
    assert csv_cell(float("-inf")) == "'-Infinity"


@pytest.mark.parametrize("text", [*(prefix + "1" for prefix in FORMULA_PREFIXES), "1", "'=1", " =1", ""])
def test_neutralise_formula_applies_the_rule_csv_cell_applies_to_text(text):
    # csv_cell inlines the rule for speed; neutralise_formula serves the cells that are not plain text.
    assert neutralise_formula(text) == csv_cell(text)
    assert neutralise_formula(text) == ("'" + text if text[:1] in FORMULA_PREFIXES else text)


def test_none_is_an_empty_cell_and_booleans_are_json():
    assert csv_cell(None) == ""
    assert (csv_cell(True), csv_cell(False)) == ("true", "false")
    assert csv_cell(3) == "3"


def test_nested_values_are_json_never_python_repr():
    value = {"messages": [{"role": "user", "content": HEBREW, "flags": {"spam": False, "score": None}}]}
    cell = csv_cell(value)
    assert json.loads(cell) == value
    assert "False" not in cell and "None" not in cell and "'" not in cell
    assert HEBREW in cell  # ensure_ascii=False: readable, not \\u escapes


@pytest.mark.parametrize(
    "beside",
    [None, 2**64, -(2**63) - 1, "half an emoji \ud83d"],
    ids=["orjson", "integer_over_64_bits", "integer_under_64_bits", "lone_surrogate"],
)
def test_nan_and_infinity_inside_a_structure_are_null_whichever_encoder_writes_it(beside):
    # Beside a value orjson refuses, the standard library's encoder writes the row: it must not write NaN or
    # Infinity, which are not JSON (jq and BigQuery refuse the line), where orjson writes null.
    value = {"scores": {"a": float("nan"), "b": [float("inf"), float("-inf"), 0.5]}, "beside": beside}
    text = structure_json(value)
    assert json.loads(text) == {"scores": {"a": None, "b": [None, None, 0.5]}, "beside": beside}
    assert "NaN" not in text and "Infinity" not in text
    assert jsonl_line(value) == text + "\n"


def test_json_list_starting_with_formula_text_is_not_prefixed():
    assert csv_cell(["=1+1"]) == '["=1+1"]'


def test_record_puts_known_fields_in_fixed_order_and_unknown_ones_in_extra():
    row = {"zeta": 1, "output": "answer", "id": "x", "alpha": {"b": 2}, "input": "question"}
    record = dict(zip(CSV_HEADER, csv_record(row), strict=True))
    assert (record["id"], record["input"], record["output"]) == ("x", "question", "answer")
    assert record["extra"] == '{"alpha":{"b":2},"zeta":1}'
    assert list(json.loads(record["extra"])) == ["alpha", "zeta"]


def test_record_without_unknown_fields_has_an_empty_extra_cell():
    assert csv_record(log())[-1] == ""


AWKWARD_CELLS = [
    "",
    "plain",
    "a,b",
    'say "hi"',
    '"',
    '""',
    "line\nbreak",
    "cr\rreturn",
    "crlf\r\n",
    "\n",
    " leading and trailing spaces ",
    "tab\tinside",
    "semi;colon",
    "nul\x00char",
    "unicode line separator\u2028and paragraph\u2029",
    "'quote-prefixed",
    HEBREW,
    '{"json": "with, commas and \\"escapes\\""}',
    "#hash",
    "\ufeffbom inside",
]


@pytest.mark.parametrize("cell", AWKWARD_CELLS)
def test_csv_line_is_byte_for_byte_what_the_csv_module_writes(cell):
    expected = io.StringIO(newline="")
    csv.writer(expected).writerow(["first", cell, "last"])
    assert csv_line(["first", cell, "last"]) == expected.getvalue()


def test_csv_line_of_every_awkward_cell_reads_back_with_the_csv_module():
    line = csv_line(AWKWARD_CELLS)
    assert next(csv.reader(io.StringIO(line, newline=""))) == AWKWARD_CELLS


def test_non_json_value_is_a_type_error_naming_the_type():
    with pytest.raises(TypeError, match="set"):
        csv_cell({"a": {1, 2}})


def test_default_name_carries_date_format_and_compression():
    day = date(2026, 11, 29)
    assert default_backup_name(day, fmt="csv", gzip=False) == "logs_backup_2026-11-29.csv"
    assert default_backup_name(day, fmt="jsonl", gzip=True) == "logs_backup_2026-11-29.jsonl.gz"


# --- the CSV file ---------------------------------------------------------------------------------


# The README's column list (backup_logs, "Columns"), written out here rather than read from LOG_COLUMNS: a
# renamed, dropped or reordered column would change every weekly file, and must fail a test.
DOCUMENTED_COLUMNS = [
    *("id", "created", "root_span_id", "span_id", "span_parents", "is_root", "input", "output", "expected"),
    *("error", "metadata", "tags", "scores", "metrics", "context", "span_attributes", "origin", "comments"),
    *("audit_data", "facets", "classifications", "org_id", "project_id", "log_id", "_xact_id", "_pagination_key"),
    "extra",
]


def test_csv_header_is_the_documented_fixed_order_with_extra_last(tmp_path):
    path = tmp_path / "backup.csv"
    write(path, [log()])
    assert read_csv_header(path) == DOCUMENTED_COLUMNS
    assert list(CSV_HEADER) == DOCUMENTED_COLUMNS


def test_csv_starts_with_a_utf8_bom_for_spreadsheets(tmp_path):
    path = tmp_path / "backup.csv"
    write(path, [log()])
    assert path.read_bytes().startswith(b"\xef\xbb\xbfid,created,")


def test_deeply_nested_structures_round_trip_as_json(tmp_path):
    deep: dict = {"leaf": ["x", 1, None, True]}
    for level in range(40):
        deep = {f"level{level}": deep, "list": [deep, {"n": level}]} if level < 3 else {f"level{level}": deep}
    row = log(input={"messages": [{"role": "user", "content": "hi"}]}, metadata=deep, span_parents=["a", "b"])
    path = tmp_path / "backup.csv"
    write(path, [row])
    [read] = read_csv(path)
    assert json.loads(read["metadata"]) == deep
    assert json.loads(read["input"]) == row["input"]
    assert json.loads(read["span_parents"]) == ["a", "b"]


def test_keys_with_commas_quotes_and_newlines_stay_out_of_the_header(tmp_path):
    row = log(**{"a,b": 1, 'say "hi"': 2, "line\nbreak": 3, "=cmd": 4, "טקסט": 5})
    path = tmp_path / "backup.csv"
    write(path, [row])
    assert read_csv_header(path) == list(CSV_HEADER)
    [read] = read_csv(path)
    assert json.loads(read["extra"]) == {"a,b": 1, 'say "hi"': 2, "line\nbreak": 3, "=cmd": 4, "טקסט": 5}


def test_values_with_delimiters_quotes_and_newlines_are_quoted_and_read_back_intact(tmp_path):
    text = 'one, two; "three"\nfour\r\nfive\ttab'
    path = tmp_path / "backup.csv"
    write(path, [log(input=text, output={"a,b": 'q"uote', "nl": "x\ny"})])
    [read] = read_csv(path)
    assert read["input"] == text
    assert json.loads(read["output"]) == {"a,b": 'q"uote', "nl": "x\ny"}


def test_very_large_payload_is_kept_whole_and_counted_as_over_excels_cell_limit(tmp_path):
    big = "א" * 3_000_000
    path = tmp_path / "backup.csv"
    backup = write(path, [log(input=big, output={"messages": [{"content": big}]}), log(id="small")])
    rows = read_csv(path)
    assert rows[0]["input"] == big
    assert json.loads(rows[0]["output"])["messages"][0]["content"] == big
    assert backup.oversized_cells == 2
    assert backup.bytes == path.stat().st_size > 2 * 6_000_000


def test_hebrew_and_emoji_survive_as_utf8(tmp_path):
    path = tmp_path / "backup.csv"
    write(path, [log(input=HEBREW, tags=["הלכה", "🕯️"])])
    [read] = read_csv(path)
    assert read["input"] == HEBREW
    assert json.loads(read["tags"]) == ["הלכה", "🕯️"]
    assert HEBREW.encode("utf-8") in path.read_bytes()


def test_none_and_missing_fields_are_empty_cells(tmp_path):
    path = tmp_path / "backup.csv"
    write(path, [log(input=None, output=None, error=None)])
    [read] = read_csv(path)
    assert read["input"] == read["output"] == read["error"] == read["expected"] == read["extra"] == ""


def test_rows_with_different_fields_share_one_header_and_line_up(tmp_path):
    rows = [
        log(id="a", input="q1"),
        log(id="b", scores={"accuracy": 1}, custom_field="x"),
        {"id": "c", "other": [1, 2], "another": None},
    ]
    path = tmp_path / "backup.csv"
    write(path, rows)
    read = read_csv(path)
    assert [row["id"] for row in read] == ["a", "b", "c"]
    assert all(len(row) == len(CSV_HEADER) and None not in row for row in read)
    assert (read[0]["input"], read[0]["extra"]) == ("q1", "")
    assert json.loads(read[1]["scores"]) == {"accuracy": 1}
    assert json.loads(read[1]["extra"]) == {"custom_field": "x"}
    assert json.loads(read[2]["extra"]) == {"another": None, "other": [1, 2]}


def test_formula_text_in_a_file_is_neutralised_in_every_column(tmp_path):
    path = tmp_path / "backup.csv"
    write(path, [log(id="=id", input="=1+1", output="@SUM(A1)", error="-x", metadata={"k": "=v"})])
    [read] = read_csv(path)
    assert (read["id"], read["input"], read["output"], read["error"]) == ("'=id", "'=1+1", "'@SUM(A1)", "'-x")
    assert json.loads(read["metadata"]) == {"k": "=v"}


def test_rows_written_across_several_pages_all_land_in_order(tmp_path):
    path = tmp_path / "backup.csv"
    with BackupFile(path) as backup:
        for page in range(3):
            backup.write_rows(log(id=f"{page}-{index}") for index in range(500))
        backup.commit()
    ids = [row["id"] for row in read_csv(path)]
    assert backup.rows == 1500
    assert ids == [f"{page}-{index}" for page in range(3) for index in range(500)]


# --- JSON lines and gzip --------------------------------------------------------------------------


def test_jsonl_writes_one_object_per_line_with_values_untouched(tmp_path):
    rows = [log(input="=1+1", output={"nested": [HEBREW, None]}, unknown="+x"), log(id="2", input="a\nb")]
    path = tmp_path / "backup.jsonl"
    write(path, rows, fmt="jsonl")
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\n") == 2 and HEBREW.encode() in data
    assert read_jsonl(path) == rows


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_lone_surrogate_is_written_as_its_json_escape_and_the_file_stays_utf8(tmp_path, fmt):
    row = log(input="half an emoji \ud83d", output={"text": "\udc4d tail"})
    path = tmp_path / f"backup.{fmt}"
    write(path, [row], fmt=fmt)
    text = path.read_bytes().decode("utf-8")  # strict: raises on invalid UTF-8
    assert "\\ud83d" in text
    if fmt == "jsonl":
        assert read_jsonl(path) == [row]
    else:
        [read] = read_csv(path)
        assert json.loads(read["output"]) == {"text": "\udc4d tail"}


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_gzip_round_trips_either_format(tmp_path, fmt):
    rows = [log(id=str(index), input=HEBREW, metadata={"i": index}) for index in range(200)]
    path = tmp_path / f"backup.{fmt}.gz"
    backup = write(path, rows, fmt=fmt, gzip=True)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert backup.bytes == path.stat().st_size
    if fmt == "csv":
        read = read_csv(path)
        assert [row["id"] for row in read] == [str(index) for index in range(200)]
        assert json.loads(read[7]["metadata"]) == {"i": 7}
    else:
        assert read_jsonl(path) == rows


def test_gzip_header_names_the_final_file_not_the_temporary_one(tmp_path):
    path = tmp_path / "logs_backup_2026-11-29.csv.gz"
    write(path, [log()], gzip=True)
    with gzip.open(path) as handle:
        handle.read()
    header = path.read_bytes()[:80]
    assert b"logs_backup_2026-11-29.csv\x00" in header and b".partial" not in header


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="xlsx"):
        BackupFile(tmp_path / "x", fmt="xlsx")


# --- atomic, private, clean on failure ------------------------------------------------------------


def test_file_is_private_to_its_owner(tmp_path):
    path = tmp_path / "backup.csv"
    write(path, [log()])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_existing_file_is_replaced_atomically_and_stays_intact_until_commit(tmp_path):
    path = tmp_path / "backup.csv"
    path.write_text("last week's backup")
    path.chmod(0o644)
    with BackupFile(path) as backup:
        backup.write_rows([log(id="new")])
        assert path.read_text() == "last week's backup"
        assert len(leftovers(tmp_path)) == 1
        backup.commit()
    assert [row["id"] for row in read_csv(path)] == ["new"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


def test_leaving_without_commit_keeps_no_file(tmp_path):
    path = tmp_path / "backup.csv"
    with BackupFile(path) as backup:
        backup.write_rows([log()])
    assert not path.exists() and os.listdir(tmp_path) == []


def test_exception_while_writing_removes_the_temporary_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "backup.csv"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="page failed"):
        with BackupFile(path) as backup:
            backup.write_rows([log()])
            raise RuntimeError("page failed")
    assert path.read_text() == "old" and leftovers(tmp_path) == []


def test_keyboard_interrupt_removes_the_temporary_file(tmp_path):
    path = tmp_path / "backup.csv.gz"
    with pytest.raises(KeyboardInterrupt):
        with BackupFile(path, gzip=True) as backup:
            backup.write_rows([log()])
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_unwritable_directory_is_a_clear_error_and_leaves_nothing(unwritable_dir):
    before = sorted(os.listdir(unwritable_dir))
    with pytest.raises(BackupFileError, match="Could not create a file in .*writable") as caught:
        with BackupFile(unwritable_dir / "backup.csv"):
            pass
    assert caught.value.context["errno"] in (errno.EACCES, errno.EPERM, errno.EROFS)
    assert sorted(os.listdir(unwritable_dir)) == before


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(BackupFileError, match="does not exist"):
        with BackupFile(tmp_path / "nowhere" / "backup.csv"):
            pass


def test_output_path_that_is_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(BackupFileError, match="is a directory"):
        with BackupFile(tmp_path):
            pass


def test_disk_full_while_writing_removes_the_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "backup.csv"
    path.write_text("old")
    with pytest.raises(BackupFileError, match="Could not write .*No space left on device") as caught:
        with BackupFile(path) as backup:
            backup.write_rows([log()])

            def disk_full(*args, **kwargs):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            # The disk fills up under the file: every write from here on fails.
            monkeypatch.setattr(backup._raw.raw, "write", disk_full)
            backup.write_rows([log(input="x" * 3_000_000)])  # more than the buffers hold
            backup.commit()
    assert caught.value.context["errno"] == errno.ENOSPC
    # The command prints this message: it says what to check and that nothing was left half written.
    message = str(caught.value)
    assert "Check that the directory exists, is writable and has free space (or choose another place" in message
    assert message.endswith("; no partial file was left.")
    assert path.read_text() == "old" and leftovers(tmp_path) == []


def test_disk_full_at_the_final_flush_removes_the_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "backup.csv"
    with pytest.raises(BackupFileError, match="Could not finish"):
        with BackupFile(path) as backup:
            backup.write_rows([log()])

            def disk_full(*args, **kwargs):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(backup._raw.raw, "write", disk_full)
            backup.commit()
    assert os.listdir(tmp_path) == []


def test_a_failure_without_an_operating_system_message_still_says_why(tmp_path, monkeypatch):
    with pytest.raises(BackupFileError, match=r"Could not finish the backup .*: the volume went away\. Check"):
        with BackupFile(tmp_path / "backup.csv") as backup:
            backup.write_rows([log()])

            def volume_gone(*args, **kwargs):
                raise OSError("the volume went away")  # no errno, no strerror

            monkeypatch.setattr(backup._raw.raw, "write", volume_gone)
            backup.commit()


def test_a_file_that_cannot_be_made_private_is_closed_and_removed(tmp_path, monkeypatch):
    opened = []
    real_mkstemp = tempfile.mkstemp

    def recording_mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        opened.append(fd)
        return fd, name

    def refused(*args):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))  # a mount that ignores modes may refuse fchmod

    monkeypatch.setattr(tempfile, "mkstemp", recording_mkstemp)
    monkeypatch.setattr(os, "fchmod", refused)
    with pytest.raises(OSError, match="Operation not permitted"):
        with BackupFile(tmp_path / "backup.csv"):
            pass
    assert leftovers(tmp_path) == []
    with pytest.raises(OSError):
        os.fstat(opened[0])  # the descriptor was closed, not leaked


def test_discarding_after_the_commit_keeps_the_finished_file(tmp_path):
    path = tmp_path / "backup.csv"
    backup = write(path, [log()])
    backup.discard()  # e.g. from a caller's own finally block
    assert [row["id"] for row in read_csv(path)] == ["log-1"]


def test_discarding_twice_is_harmless(tmp_path):
    with BackupFile(tmp_path / "backup.csv") as backup:
        backup.write_rows([log()])
        backup.discard()
    # leaving the block discarded it a second time
    assert os.listdir(tmp_path) == []


def test_backup_bytes_is_the_size_on_disk(tmp_path):
    path = tmp_path / "backup.csv"
    backup = write(path, [log(input=HEBREW)])
    assert backup.bytes == path.stat().st_size == len(read_backup_bytes(path))


def test_cell_at_excels_limit_is_not_counted_but_one_character_more_is(tmp_path):
    backup = write(tmp_path / "b.csv", [log(input="x" * EXCEL_CELL_LIMIT, output="y" * (EXCEL_CELL_LIMIT + 1))])
    assert backup.oversized_cells == 1


def test_oversized_cells_are_counted_across_pages(tmp_path):
    with BackupFile(tmp_path / "b.csv") as backup:
        backup.write_rows([log(input="x" * (EXCEL_CELL_LIMIT + 1))])
        backup.write_rows([log(output="y" * (EXCEL_CELL_LIMIT + 1))])
        backup.commit()
    assert backup.oversized_cells == 2


def test_temporary_file_is_hidden_and_named_after_the_backup_in_the_pattern_a_later_run_reclaims(tmp_path):
    with BackupFile(tmp_path / "logs_backup_2026-11-29.csv.gz", gzip=True):
        [temporary] = leftovers(tmp_path)
    assert temporary.startswith(".logs_backup_2026-11-29.csv.gz.")
    assert TEMP_NAME.fullmatch(temporary)


@pytest.mark.parametrize("method", ["write_rows", "commit"])
def test_writing_or_committing_a_backup_that_is_not_open_is_refused(tmp_path, method):
    backup = BackupFile(tmp_path / "backup.csv")
    arguments = ([log()],) if method == "write_rows" else ()
    with pytest.raises(RuntimeError, match=rf"^{method}\(\) needs an open, uncommitted BackupFile$"):
        getattr(backup, method)(*arguments)


@pytest.mark.parametrize("method", ["write_rows", "commit"])
def test_writing_or_committing_after_the_commit_is_refused(tmp_path, method):
    backup = write(tmp_path / "backup.csv", [log()])
    assert backup.committed
    arguments = ([log()],) if method == "write_rows" else ()
    with pytest.raises(RuntimeError, match=rf"^{method}\(\) needs an open, uncommitted BackupFile$"):
        getattr(backup, method)(*arguments)


def test_missing_directory_error_says_how_to_choose_another(tmp_path):
    with pytest.raises(BackupFileError, match=r"another place with --output \(or BRAINTRUST_OPS_BACKUP_DIR\)\.$"):
        BackupFile(tmp_path / "nowhere" / "backup.csv").open()


def test_unwritable_directory_error_names_the_directory_and_carries_the_backup_path(unwritable_dir):
    path = unwritable_dir / "backup.csv"
    with pytest.raises(
        BackupFileError, match=f"Could not create a file in the backup {re.escape(str(unwritable_dir))}: "
    ) as caught:
        BackupFile(path).open()
    assert caught.value.context["path"] == str(path)


# --- only a regular file is replaced --------------------------------------------------------------


@pytest.mark.parametrize("kind", SPECIAL_KINDS)
def test_output_path_that_is_not_a_regular_file_is_refused_in_one_line_and_left_untouched(tmp_path, monkeypatch, kind):
    path = tmp_path / "backup.csv"
    make_special_file(kind, path, monkeypatch)
    before = snapshot(path)
    with pytest.raises(BackupFileError) as caught:
        with BackupFile(path) as backup:
            backup.write_rows([log()])
            backup.commit()
    message = str(caught.value)
    assert message.startswith(f"The backup path {path} is {SPECIAL_KINDS[kind]}, not a regular file; ")
    assert message.endswith(
        "Give --output the path of a regular file or of a new one (or choose another BRAINTRUST_OPS_BACKUP_DIR)."
    )
    assert "\n" not in message
    # What a caller reads without parsing the message, as it can for every other BackupFileError.
    assert caught.value.context == {"path": str(path), "kind": SPECIAL_KINDS[kind]}
    assert snapshot(path) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["fifo", "symlink", "char_device", "socket"])
def test_special_file_that_appears_while_rows_are_written_is_not_replaced_by_the_commit(tmp_path, monkeypatch, kind):
    path = tmp_path / "backup.csv"
    with pytest.raises(BackupFileError, match=f"is {re.escape(SPECIAL_KINDS[kind])}, not a regular file"):
        with BackupFile(path) as backup:
            backup.write_rows([log()])
            make_special_file(kind, path, monkeypatch)
            before = snapshot(path)
            backup.commit()
    assert snapshot(path) == before
    assert leftovers(tmp_path) == []


def test_regular_file_and_new_path_pass_the_output_check(tmp_path):
    existing = tmp_path / "existing.csv"
    existing.write_text("old")
    backup_target_check(existing)
    backup_target_check(tmp_path / "new.csv")
    backup_target_check(tmp_path / "missing-directory" / "new.csv")  # reported when the file is opened


@pytest.mark.parametrize(
    "mode, words",
    [
        (stat.S_IFCHR | 0o666, "a character device"),
        (stat.S_IFBLK | 0o660, "a block device"),
        (stat.S_IFIFO | 0o644, "a named pipe (FIFO)"),
        (stat.S_IFSOCK | 0o755, "a socket"),
        (stat.S_IFLNK | 0o777, "a symbolic link"),
        (stat.S_IFDIR | 0o755, "a directory"),
        (stat.S_IFREG | 0o600, None),
        (0o600, "a special file"),  # no type bits at all: not a regular file either
    ],
)
def test_every_kind_of_file_but_a_regular_one_is_named_for_refusal(mode, words):
    assert special_file_kind(mode) == words


def test_output_path_that_cannot_be_inspected_is_a_clear_error(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "lstat", refused)
    with pytest.raises(BackupFileError, match=r"Could not inspect the backup .*backup.csv: Permission denied\. Check"):
        backup_target_check(tmp_path / "backup.csv")


# --- what a run killed mid-write leaves, the next one removes -------------------------------------

# A backup in a process of its own: it writes a page larger than its buffers (so bytes reach the disk), says
# so, then waits, as a run waits for its next BTQL page, until it is killed.
_BACKUP_WAITING_FOR_A_PAGE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from braintrust_ops.backup_files import BackupFile
    with BackupFile(Path(sys.argv[1])) as backup:
        backup.write_rows({"id": str(index), "input": "x" * 1000} for index in range(2000))
        print("waiting for the next page", flush=True)
        time.sleep(120)
""")


@contextmanager
def backup_in_another_process(path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """Yield the process and the name of its temporary file, once part of its rows is on disk."""
    process = subprocess.Popen(
        [sys.executable, "-c", _BACKUP_WAITING_FOR_A_PAGE, str(path)],
        cwd=HOST_ROOT,
        env={**os.environ, "PYTHONPATH": str(HOST_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line == "waiting for the next page\n", process.stderr.read()
        [temporary] = leftovers(path.parent)
        assert (path.parent / temporary).stat().st_size >= 1 << 20
        yield process, temporary
    finally:
        process.kill()
        process.wait(30)
        process.stdout.close()
        process.stderr.close()


def test_temporary_file_of_a_backup_killed_mid_write_is_removed_by_the_next_backup(tmp_path):
    with backup_in_another_process(tmp_path / "logs_backup_2026-11-22.csv") as (process, temporary):
        process.send_signal(signal.SIGKILL)
        assert process.wait(30) == -signal.SIGKILL
    assert leftovers(tmp_path) == [temporary]  # kill -9 gave it no chance to clean up
    backup = write(tmp_path / "logs_backup_2026-11-29.csv", [log()])  # next week's run
    assert os.listdir(tmp_path) == ["logs_backup_2026-11-29.csv"]
    assert backup.reclaimed == [temporary]


def test_temporary_file_of_a_backup_still_running_is_left_alone_however_old(tmp_path):
    with backup_in_another_process(tmp_path / "a.csv") as (process, temporary):
        an_hour_ago = time.time() - 3600
        os.utime(tmp_path / temporary, (an_hour_ago, an_hour_ago))  # a run waiting that long for a page
        backup = write(tmp_path / "b.csv", [log()])
        assert backup.reclaimed == [] and leftovers(tmp_path) == [temporary]
        assert process.poll() is None


def test_only_stale_regular_files_of_the_backup_s_own_naming_are_removed(tmp_path):
    an_hour_ago, in_an_hour = time.time() - 3600, time.time() + 3600
    others = [
        "notes.partial",
        ".backup.csv.partial",
        ".backup.csv.abcdefgh.partial",  # another program's naming, or this one's before it had its own suffix
        "backup.csv.abcdefgh.braintrust-backup.partial",  # not hidden
        ".backup.csv.ABCDEFGH.braintrust-backup.partial",  # not mkstemp's characters
        ".backup.csv.abcdefg.braintrust-backup.partial",  # seven of them
        "logs_backup_2026-11-22.csv",
        "link-target.csv",
    ]
    for name in others:
        (tmp_path / name).write_text("someone's data")
    newer = tmp_path / ".w.csv.newer000.braintrust-backup.partial"  # ours, but written after this run began
    newer.write_text("rows")
    os.utime(newer, (in_an_hour, in_an_hour))
    os.mkfifo(tmp_path / ".x.csv.fifo0000.braintrust-backup.partial")
    (tmp_path / ".y.csv.link0000.braintrust-backup.partial").symlink_to(tmp_path / "link-target.csv")
    (tmp_path / ".z.csv.dir00000.braintrust-backup.partial").mkdir()
    stale = ".v.csv.stale000.braintrust-backup.partial"
    (tmp_path / stale).write_text("rows of a killed run")
    for name in os.listdir(tmp_path):
        if name != newer.name:
            os.utime(tmp_path / name, (an_hour_ago, an_hour_ago), follow_symlinks=False)
    before = set(os.listdir(tmp_path))

    backup = write(tmp_path / "backup.csv", [log()])
    assert backup.reclaimed == [stale]
    assert set(os.listdir(tmp_path)) == before - {stale} | {"backup.csv"}
    assert all((tmp_path / name).read_text() == "someone's data" for name in others)


def test_a_directory_that_cannot_be_listed_reclaims_nothing(tmp_path):
    assert stale_temporaries_remove(tmp_path / "missing", older_than=time.time()) == []


def stale_temporary(directory: Path, name: str = ".v.csv.stale000.braintrust-backup.partial") -> Path:
    """A temporary file as a run killed an hour ago left it."""
    path = directory / name
    path.write_text("rows of a killed run")
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))
    return path


def test_a_temporary_file_last_written_exactly_when_this_run_began_is_not_stale(tmp_path):
    stale = stale_temporary(tmp_path)
    written = stale.stat().st_mtime
    assert stale_temporaries_remove(tmp_path, older_than=written) == [] and stale.exists()
    assert stale_temporaries_remove(tmp_path, older_than=written + 1) == [stale.name] and not stale.exists()


def test_a_stale_temporary_that_cannot_be_opened_is_left_and_not_reported_as_reclaimed(tmp_path, monkeypatch):
    stale = stale_temporary(tmp_path)
    real_open = os.open

    def refuse_it(path, flags, *args, **kwargs):
        # Another user's file of mode 000: this process (root in CI, which opens anything) cannot make it.
        if os.fspath(path) == os.fspath(stale):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse_it)
    assert stale_temporaries_remove(tmp_path, older_than=time.time()) == [] and stale.exists()


def test_a_file_swapped_in_under_a_stale_temporary_name_is_not_removed(tmp_path, monkeypatch):
    stale = stale_temporary(tmp_path)
    someone_else = tmp_path / "someone-else.txt"
    someone_else.write_text("someone's data")
    real_open = os.open

    def open_then_swap(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if os.fspath(path) == os.fspath(stale):
            os.replace(someone_else, stale)  # between the reclaimer's checks of the file it holds and the unlink
        return fd

    monkeypatch.setattr(os, "open", open_then_swap)
    assert stale_temporaries_remove(tmp_path, older_than=time.time()) == []
    assert stale.read_text() == "someone's data"


def test_a_fifo_swapped_in_under_a_stale_temporary_name_never_blocks_the_reclaimer_and_is_left(tmp_path, monkeypatch):
    stale = stale_temporary(tmp_path)
    real_open = os.open

    def swap_then_open(path, flags, *args, **kwargs):
        if os.fspath(path) == os.fspath(stale):
            stale.unlink()  # between the reclaimer's lstat and its open: the name is a FIFO with no writer
            os.mkfifo(stale)
        return real_open(path, flags, *args, **kwargs)

    # A reading open of a FIFO without a writer waits for one: without O_NONBLOCK the backup would hang
    # here. The watchdog plays that writer after a while, so a hang fails this test instead of stalling it.
    reclaimed_on_its_own = threading.Event()
    watchdog_had_to_unblock = []

    def watchdog() -> None:
        if not reclaimed_on_its_own.wait(10):
            watchdog_had_to_unblock.append(True)
            os.close(real_open(stale, os.O_WRONLY))

    monkeypatch.setattr(os, "open", swap_then_open)
    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    removed = stale_temporaries_remove(tmp_path, older_than=time.time())
    reclaimed_on_its_own.set()
    guard.join()
    assert watchdog_had_to_unblock == []
    assert removed == [] and stat.S_ISFIFO(os.lstat(stale).st_mode)


def test_without_flock_no_temporary_is_removed_and_the_backup_is_still_written(tmp_path, monkeypatch):
    stale = stale_temporary(tmp_path)

    def no_locks(*args):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))  # a filesystem without flock

    monkeypatch.setattr(fcntl, "flock", no_locks)
    backup = write(tmp_path / "backup.csv", [log()])
    assert backup.reclaimed == [] and stale.exists()
    assert [row["id"] for row in read_csv(tmp_path / "backup.csv")] == ["log-1"]
