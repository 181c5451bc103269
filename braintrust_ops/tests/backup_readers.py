"""Reading a backup back the way its users would: a CSV reader, a JSON-lines reader, gunzip."""

import csv
import gzip
import io
import json
import os
import sys
from pathlib import Path

# A backup keeps very large cells whole; the csv module's reader refuses fields over 128 KiB by default.
csv.field_size_limit(sys.maxsize)


def read_backup_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def read_csv(path: Path) -> list[dict]:
    """The backup's rows as dicts keyed by the header."""
    text = read_backup_bytes(path).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def read_csv_header(path: Path) -> list[str]:
    text = read_backup_bytes(path).decode("utf-8-sig")
    return next(csv.reader(io.StringIO(text, newline="")))


def read_jsonl(path: Path) -> list[dict]:
    # Lines end at "\n" alone (JSON lines); str.splitlines would also cut at U+2028, U+0085 and other
    # characters that JSON text holds unescaped inside a string.
    text = read_backup_bytes(path).decode("utf-8")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def leftovers(directory: Path) -> list[str]:
    """Temporary files a backup left in the directory."""
    return sorted(name for name in os.listdir(directory) if name.endswith(".partial"))
