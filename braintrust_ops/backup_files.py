"""The backup file: rows streamed to CSV or JSON lines, written under a temporary name, renamed when whole.

Pure file handling, no Django and no HTTP: ``backup_logs`` feeds it one BTQL page at a time, so a
week of logs never sits in memory, and the file appears at its final path only once it is complete.

Decisions, and why
------------------
**Columns (CSV).** A fixed order, the same every week, so files from different weeks line up
column for column: ``LOG_COLUMNS`` (the fields Braintrust documents for a project log event), then
one trailing ``extra`` column. A field outside ``LOG_COLUMNS`` goes into ``extra`` as a JSON object
of every such field of that row, keys sorted; ``extra`` is empty when a row has none. The
alternative, one column per field ever seen, needs the whole result before the header can be
written (two passes, or every row in memory) and makes the header depend on the data; a fixed
header keeps the export single-pass and the header free of user-controlled text (a key holding a
comma, quote or newline lives inside ``extra``'s JSON, never in the header).

**Cells (CSV).** A string is written as it is. A dict or list is compact JSON (UTF-8, not ASCII-escaped,
so Hebrew and emoji stay readable), never Python ``repr``. A boolean is ``true``/``false``, a number
its JSON text. ``None`` (and a missing field) is an empty cell; so is an empty string: CSV cannot tell
them apart, JSON lines can. A string whose content looks like JSON is indistinguishable from the
structure it spells: JSON lines is the lossless format. A cell holding a comma, a quote or a line
break is quoted, quotes doubled, records end with CRLF: RFC 4180, the ``csv`` module's excel dialect,
byte for byte. ``csv_quote`` does that with ``str`` methods instead of calling ``csv.writer``, whose
per-character loop was the largest single cost of the export (about 50 us of a 2 KB row, more than
parsing the row); a test pins the two to identical output on every awkward value we know of.

**JSON encoding.** Structures are encoded by ``orjson``, about three times faster than the standard
library on a log's nested messages (the export's largest cost after parsing). What orjson refuses
falls back to the standard library's encoder, so nothing is lost: an integer beyond 64 bits, a lone
surrogate (see Encoding), a non-string key. A NaN or infinity *inside* a structure becomes ``null``,
whichever encoder writes it (orjson does so itself, and the fallback is made to), as in JavaScript's
``JSON.stringify``: standard JSON has no such values (jq and BigQuery refuse a line holding one), and
Braintrust's API never sends them. A bare non-finite number in a CSV cell is still written as its text.

**Formula injection (CSV).** Chat text is user input, and these files get opened in spreadsheets: a
text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
``'`` so the spreadsheet shows it as text instead of evaluating it (OWASP's advice for CSV
injection). It applies to every text cell, the JSON-rendered ones included (they start with ``{``,
``[`` or ``"`` and are never touched in practice). A cell holding a real finite number (a JSON int or
float, e.g. ``-0.5``) is left alone: a spreadsheet reads it as a number, which cannot carry a
formula. JSON lines is not a spreadsheet format: its values are written untouched.

**Encoding.** UTF-8. The CSV starts with a byte-order mark (``utf-8-sig``): without it Excel opens a
double-clicked CSV in the machine's legacy code page and Hebrew turns into mojibake; Google Sheets,
LibreOffice, Numbers, pandas and Python's ``csv`` (with ``encoding="utf-8-sig"``) all take the BOM in
their stride. JSON lines has no BOM (JSON forbids one). A lone surrogate (half an emoji, legal in
JSON text, no UTF-8 form) is written as its JSON escape ``\\udXXX`` rather than failing the backup.

**Big cells.** Nothing is truncated: the backup is complete. A cell longer than 32,767 characters
(Excel's limit per cell) is counted in ``BackupFile.oversized_cells``; Excel truncates such a cell
when it opens the file, the file itself keeps it whole.

**Atomic and private.** The file is written to a hidden temporary name in the target directory
(``mkstemp``: mode 0600, never world-readable, the logs hold users' chat text), flushed and fsynced,
then ``os.replace``-d over the final path (an existing file is replaced in one step). Any exception,
``KeyboardInterrupt`` included, removes the temporary file: an uploader never sees a half file.

**A run killed mid-write.** ``kill -9`` or the out-of-memory killer gives no chance to remove the
temporary file. The next backup into the same directory removes such leftovers before it starts its own:
only names of this module's own pattern (``.<final name>.<8 random characters>.braintrust-backup.partial``),
only regular files last written before that backup began, and only when no process holds the file's
lock. A backup holds an exclusive ``flock`` on its temporary file from its creation to the rename, and the
kernel drops it when the process dies, however it dies: a live backup's file is never taken for a stale
one, however long it waits for a page. On a filesystem without ``flock`` nothing is removed.

**Only a regular file is replaced.** The rename swaps the directory entry whatever it is: run as root,
``--output /dev/null`` would turn the device into a regular file, and a symbolic link would be replaced
instead of written through. So the path must be a regular file or not exist: anything else (a device, a
FIFO, a socket, a directory, a symbolic link, judged by ``lstat``) is refused with one line before anything
is written (``backup_logs`` asks before its first request), and looked at again just before the rename, in
case one appeared meanwhile: only the microseconds between that look and the rename stay open, as ``rename``
has no portable "replace only a regular file". The temporary file itself is created with ``O_EXCL``
(``mkstemp``), which never follows a link.

**gzip.** Either format can be compressed; the gzip header names the uncompressed file, not the
temporary one.
"""

import fcntl
import gzip as gzip_module
import io
import json
import json.encoder as json_encoder
import math
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from braintrust_ops.exceptions import BraintrustOpsError

if TYPE_CHECKING:  # only CPython has the accelerator module; see _encoder for the fallback
    from _json import make_encoder

#: The known fields of a Braintrust project log event, in the order the CSV columns have them.
LOG_COLUMNS: tuple[str, ...] = (
    "id",
    "created",
    "root_span_id",
    "span_id",
    "span_parents",
    "is_root",
    "input",
    "output",
    "expected",
    "error",
    "metadata",
    "tags",
    "scores",
    "metrics",
    "context",
    "span_attributes",
    "origin",
    "comments",
    "audit_data",
    "facets",
    "classifications",
    "org_id",
    "project_id",
    "log_id",
    "_xact_id",
    "_pagination_key",
)
EXTRA_COLUMN = "extra"
CSV_HEADER: tuple[str, ...] = (*LOG_COLUMNS, EXTRA_COLUMN)
_KNOWN = frozenset(LOG_COLUMNS)

FORMATS = ("csv", "jsonl")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXCEL_CELL_LIMIT = 32_767
UTF8_BOM = "\ufeff"
FILE_MODE = 0o600
WRITE_BUFFER_BYTES = 1 << 20
GZIP_LEVEL = 6  # zlib's default: most of level 9's ratio at a fraction of its time
TEMP_SUFFIX = ".braintrust-backup.partial"
#: A temporary file of this module: "." + the final name + "." + mkstemp's 8 random characters + TEMP_SUFFIX.
TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX))


class _DiskFile(io.FileIO):
    """The operating-system file under the buffers: ``io.FileIO`` itself, but an instance whose ``write``
    a test can replace to play a full disk, a fault no real test directory produces on demand."""


class BackupFileError(BraintrustOpsError):
    """The backup file could not be written; no partial file is left behind."""


#: How the refusal names each kind of file that is not a regular one (``stat`` tests, in the order tried).
_SPECIAL_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def special_file_kind(mode: int) -> str | None:
    """What a file of this ``st_mode`` is, in words, when it is not a regular file; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for is_kind, kind in _SPECIAL_KINDS if is_kind(mode)), "a special file")


def backup_target_check(path: Path) -> None:
    """Refuse a backup path that exists and is not a regular file; a new path or a regular file passes.

    ``lstat``, not ``stat``: a symbolic link is judged as itself, never by what it points to.
    """
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return  # a new file (a missing directory is reported when the file is opened)
    except OSError as exc:
        raise _os_error("inspect", exc, path=path) from exc
    kind = special_file_kind(mode)
    if kind is not None:
        raise BackupFileError(
            f"The backup path {path} is {kind}, not a regular file; it was left untouched. Give --output the path "
            "of a regular file or of a new one (or choose another BRAINTRUST_OPS_BACKUP_DIR).",
            path=str(path),
            kind=kind,
        )


def stale_temporaries_remove(directory: Path, *, older_than: float) -> list[str]:
    """Remove the temporary files that backups killed mid-write left in ``directory``; return their names.

    A file goes only if its name is of ``TEMP_NAME``'s pattern, it is a regular file last written before
    ``older_than`` (a ``time.time()``), and no process holds its lock (see "A run killed mid-write").
    Anything it cannot be sure of, or fails to remove, stays: the next run looks again.
    """
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [name for name in names if TEMP_NAME.fullmatch(name) and _remove_if_stale(directory / name, older_than)]


def _remove_if_stale(path: Path, older_than: float) -> bool:
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False  # a device, FIFO or link is never even opened
        # O_NOFOLLOW and O_NONBLOCK: should the name become a link or a FIFO after the lstat, open neither.
        # Equivalent mutant: without O_NOFOLLOW a link's target is opened, and the samestat check below
        # still leaves the name alone (defence in depth; O_NONBLOCK's loss is a hang, which a test catches).
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        held = os.fstat(fd)  # every check is of the file held open, whatever the name points to meanwhile
        if not stat.S_ISREG(held.st_mode) or held.st_mtime >= older_than:
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while the backup writing it lives
        if not os.path.samestat(held, os.lstat(path)):
            return False  # the name now belongs to another file
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _lock_while_open(fd: int) -> None:
    """Lock a new temporary file for as long as this process keeps it open: the sign that its writer lives."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass  # a filesystem without flock: no reclaimer can lock the file either, so none removes it


def neutralise_formula(text: str) -> str:
    """Prefix a cell that a spreadsheet would evaluate as a formula with ``'``."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


# The C accelerator json.encoder found, or None without it; typeshed leaves this private name out.
_c_make_encoder: "type[make_encoder] | None" = json_encoder.c_make_encoder  # type: ignore[attr-defined]


# pragma: no mutate start
# Called once, at import, before mutmut can switch a mutant on: its mutants would all "survive" untested.
# test_backup_files pins the encoder's output to json.dumps instead (the csv_cell and fallback tests).
def _encoder(*, item_separator: str, key_separator: str, allow_nan: bool = True) -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, separators=...)``, without its per-call set-up.

    ``json.dumps`` with a non-default option builds a ``JSONEncoder`` and then a C encoder on every
    call, a few microseconds that dominate for the small dicts of a log row (scores, metrics, ...).
    The C encoder is built once here, the way ``JSONEncoder.iterencode`` builds it; without the C
    accelerator this falls back to the plain encoder. No circular-reference check: the values come
    from parsed JSON and cannot be circular.
    """
    if _c_make_encoder is None:  # pragma: no cover - CPython always has the accelerator
        fallback = json.JSONEncoder(ensure_ascii=False, separators=(item_separator, key_separator), allow_nan=allow_nan)
        return fallback.encode
    encode_chunks = _c_make_encoder(
        None,  # markers: no circular-reference check
        json.JSONEncoder().default,  # raises TypeError naming a type JSON cannot hold
        json_encoder.encode_basestring,  # ensure_ascii=False
        None,  # indent
        key_separator,
        item_separator,
        False,  # sort_keys
        False,  # skipkeys
        allow_nan,  # False: a NaN or infinity raises ValueError instead of being written as NaN/Infinity
    )
    join = "".join

    def encode(value: Any) -> str:
        return join(encode_chunks(value, 0))

    return encode


# pragma: no mutate end
_stdlib_json = _encoder(item_separator=",", key_separator=":")
_standard_json = _encoder(item_separator=",", key_separator=":", allow_nan=False)


def structure_json(value: Any) -> str:
    """Compact JSON of a parsed value: orjson, or the standard library for what orjson refuses."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: a >64-bit integer, a lone surrogate, a non-string key
        return _fallback_json(value)


def _fallback_json(value: Any) -> str:
    """The standard library's JSON of a value orjson refused, with NaN and infinities as null, as orjson
    writes them: the same value comes out the same whichever encoder takes it (see JSON encoding)."""
    try:
        return _standard_json(value)
    except ValueError:  # a NaN or an infinity somewhere inside: rare, so only then is the value walked
        return _standard_json(_non_finite_as_null(value))


def _non_finite_as_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _non_finite_as_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_non_finite_as_null(item) for item in value]
    return value


def csv_cell(value: Any) -> str:
    """One CSV cell: text as is, structures as JSON, None empty; formula-looking text neutralised."""
    kind = value.__class__
    if kind is str:
        return "'" + value if value.startswith(FORMULA_PREFIXES) else value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    # `and` (mutmut) sends dicts down the last line: the same JSON from the slower encoder, equivalent.
    if kind is dict or kind is list:
        return structure_json(value)  # starts with { or [: never a formula
    if kind in (int, float) and math.isfinite(value):
        return _stdlib_json(value)
    # a str subclass or an infinite float can start with anything.
    return neutralise_formula(_stdlib_json(value))


def csv_record(row: Mapping[str, Any]) -> list[str]:
    """A log row as CSV cells in ``CSV_HEADER`` order; unknown fields go into the ``extra`` JSON cell."""
    get = row.get
    cells = [csv_cell(get(name)) for name in LOG_COLUMNS]
    if _KNOWN.issuperset(row):
        cells.append("")
    else:
        cells.append(csv_cell({key: row[key] for key in sorted(row) if key not in _KNOWN}))
    return cells


def csv_quote(cell: str) -> str:
    """RFC 4180 minimal quoting: exactly what ``csv.writer`` (the excel dialect) writes for one field
    of a row of several. ``braintrust_ops/tests/test_backup_files.py`` pins the two byte for byte."""
    if '"' in cell or "," in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_line(cells: Iterable[str]) -> str:
    """One CSV record, CRLF-terminated, as ``csv.writer(...).writerow(cells)`` writes it."""
    return ",".join([csv_quote(cell) for cell in cells]) + "\r\n"


def jsonl_line(row: Mapping[str, Any]) -> str:
    """A log row as one JSON line, its values untouched."""
    return structure_json(row) + "\n"


def default_backup_name(day, *, fmt: str, gzip: bool) -> str:
    """``logs_backup_YYYY-MM-DD.csv`` (``.jsonl``; ``.gz`` appended when compressed)."""
    return f"logs_backup_{day:%Y-%m-%d}.{fmt}" + (".gz" if gzip else "")


class BackupFile:
    """A backup being written. Use as a context manager::

        with BackupFile(path, fmt="csv", gzip=False) as backup:
            for page in pages:
                backup.write_rows(page)
            backup.commit()

    ``commit()`` puts the finished file at ``path``; leaving the block without it (an exception, or
    simply not calling it) removes the temporary file and leaves ``path`` as it was.
    """

    def __init__(self, path: str | os.PathLike, *, fmt: str = "csv", gzip: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"unknown backup format {fmt!r}; expected one of {FORMATS}")
        self.path = Path(path)
        self.fmt = fmt
        self.gzip = gzip
        self.rows = 0
        self.oversized_cells = 0
        # The finished file's size, known after commit() and read only then: None or 1 here (mutmut) is equivalent.
        self.bytes = 0  # pragma: no mutate (see above)
        self.committed = False  # only ever tested for truth: None (mutmut) is equivalent
        #: the stale temporary files (names) that opening this backup removed from its directory
        self.reclaimed: list[str] = []
        self._temp_path: Path | None = None
        self._raw: io.BufferedWriter | None = None
        self._compressed: gzip_module.GzipFile | None = None
        self._out: io.BufferedIOBase | None = None  # what rows are written to: the gzip stream or the raw file

    # --- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> "BackupFile":
        try:
            self.open()
        except BaseException:
            self.discard()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.committed:
            self.discard()

    def open(self) -> None:
        directory = self.path.parent
        backup_target_check(self.path)
        if not directory.is_dir():
            raise BackupFileError(
                f"The backup directory {directory} does not exist. Create it, or choose another place with "
                "--output (or BRAINTRUST_OPS_BACKUP_DIR)."
            )
        self.reclaimed = stale_temporaries_remove(directory, older_than=time.time())
        try:
            fd, temp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=TEMP_SUFFIX, dir=directory)
        except OSError as exc:
            raise self._error("create a file in", exc, target=directory) from exc
        self._temp_path = Path(temp_name)
        try:
            _lock_while_open(fd)
            os.fchmod(fd, FILE_MODE)
            disk_file = _DiskFile(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        # Without buffer_size (mutmut) the file is the same, written in smaller pieces: equivalent.
        self._raw = raw = io.BufferedWriter(disk_file, buffer_size=WRITE_BUFFER_BYTES)
        out: io.BufferedIOBase = raw
        if self.gzip:
            # pragma: no mutate start
            # Its mutants are equivalent: GzipFile drops a ".gz" from the name itself, takes "wb" from the
            # file, and any level writes the same content (GZIP_LEVEL is a speed choice).
            self._compressed = out = gzip_module.GzipFile(
                filename=self.path.name.removesuffix(".gz"), mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL
            )
            # pragma: no mutate end
        self._out = out
        if self.fmt == "csv":
            self._write(out, UTF8_BOM + csv_line(CSV_HEADER))

    def write_rows(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append rows (typically one BTQL page); return how many were written."""
        out = self._out
        if out is None or self.committed:
            raise RuntimeError("write_rows() needs an open, uncommitted BackupFile")
        if self.fmt == "csv":
            lines = []
            for row in rows:
                cells = csv_record(row)
                # `>=` here (mutmut) is equivalent: the count below adds 0 for a cell exactly at the limit.
                if max(map(len, cells)) > EXCEL_CELL_LIMIT:
                    self.oversized_cells += sum(1 for cell in cells if len(cell) > EXCEL_CELL_LIMIT)
                lines.append(csv_line(cells))
        else:
            lines = [jsonl_line(row) for row in rows]
        self._write(out, "".join(lines))
        self.rows += len(lines)
        return len(lines)

    def commit(self) -> None:
        """Finish the file and move it to its final path in one step."""
        # open() sets the raw file and the temporary path before the output stream, so all three are set,
        # and a commit clears the stream: `self._out is None` alone decides, the other clauses narrow types
        # for mypy, and the `and`s mutmut puts between them are equivalent.
        raw, temp_path = self._raw, self._temp_path
        if self._out is None or raw is None or temp_path is None or self.committed:
            raise RuntimeError("commit() needs an open, uncommitted BackupFile")

        def finish() -> None:
            if self._compressed is not None:
                self._compressed.close()  # writes the gzip trailer; leaves the raw file open
            raw.flush()
            os.fsync(raw.fileno())
            self.bytes = os.fstat(raw.fileno()).st_size
            backup_target_check(self.path)  # again: a device, FIFO or link may have appeared while rows were written
            os.replace(temp_path, self.path)
            raw.close()  # after the rename: the lock marks the temporary file as live until it has its final name

        self._guarded(finish, action="finish")
        self.committed = True
        self._temp_path = None
        self._out = self._compressed = self._raw = None
        _fsync_directory(self.path.parent)

    def discard(self) -> None:
        """Close and remove the temporary file, whatever state it is in. Never raises OSError."""
        for stream in (self._compressed, self._raw):
            if stream is not None:
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass  # a full disk fails the flush inside close(); the file goes anyway
        self._out = self._compressed = self._raw = None
        if self._temp_path is not None:
            try:
                # The except below takes a missing file too: missing_ok=False or None (mutmut) is equivalent.
                self._temp_path.unlink(missing_ok=True)  # pragma: no mutate (see above)
            except OSError:
                pass
            self._temp_path = None

    # --- writing and errors -------------------------------------------------------------------

    def _write(self, out: io.BufferedIOBase, text: str) -> None:
        # A lone surrogate (half an emoji cut by a truncation upstream) is legal in JSON text but has no
        # UTF-8 form: it is written as its JSON escape, \udXXX, so the file stays valid UTF-8 (and valid JSON).
        data = text.encode("utf-8", "backslashreplace")  # "UTF-8" (mutmut) names the same codec
        self._guarded(lambda: out.write(data))

    def _guarded(self, operation: Callable[[], object], *, action: str = "write") -> None:
        try:
            operation()
        except OSError as exc:
            raise self._error(action, exc) from exc

    def _error(self, action: str, exc: OSError, *, target: Path | None = None) -> BackupFileError:
        return _os_error(action, exc, path=self.path, target=target)


def _os_error(action: str, exc: OSError, *, path: Path, target: Path | None = None) -> BackupFileError:
    reason = exc.strerror or str(exc)
    return BackupFileError(
        f"Could not {action} the backup {target or path}: {reason}. Check that the directory exists, "
        "is writable and has free space (or choose another place with --output); no partial file was left.",
        path=str(path),
        errno=exc.errno,
    )


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not every filesystem allows opening a directory, so best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
