"""Dataset insert requests capped by size, not only by count.

Sefaria's chats quote long sources: 200 rows of about 40 KB make a 7.6 MB request, over the 6 MB the
braintrust SDK allows itself (``DEFAULT_MAX_REQUEST_SIZE``, ``braintrust/logger.py``), and the 413 that
follows failed the whole dataset every night. Here each request body is sized exactly as it will be
sent, and batches are cut before the cap.
"""

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

# The body is {"events": [e1, e2, ...]}, encoded as requests encodes ``json=``:
# json.dumps(body, allow_nan=False) with the default separators and ensure_ascii (requests/models.py,
# PreparedRequest.prepare_body), so every byte is ASCII and a length in characters is a length in bytes.
# requests uses simplejson instead when it is installed; for these values its output is the same.
BODY_OPENING = len('{"events": [')
BODY_CLOSING = len("]}")
SEPARATOR = len(", ")


def encoded_size(event: Mapping[str, Any]) -> int:
    """Bytes of ``event`` inside the request body."""
    return len(json.dumps(event, allow_nan=False))


def body_size(sizes: Iterable[int]) -> int:
    """Bytes of the request body holding events of these encoded sizes."""
    sizes = list(sizes)
    return BODY_OPENING + sum(sizes) + SEPARATOR * max(len(sizes) - 1, 0) + BODY_CLOSING


def fits_alone(size: int, max_bytes: int) -> bool:
    return body_size([size]) <= max_bytes


def batches(items: Iterable[tuple[T, int]], *, max_rows: int, max_bytes: int) -> Iterator[list[T]]:
    """Group ``(item, encoded size)`` pairs, in order, into batches of at most ``max_rows`` items whose
    body is at most ``max_bytes``. An item too large to fit even alone is yielded as a batch of one:
    the caller checks ``fits_alone`` first and decides what to do with it."""
    batch: list[T] = []
    used = BODY_OPENING + BODY_CLOSING
    for item, size in items:
        extra = size + (SEPARATOR if batch else 0)
        if batch and (len(batch) >= max_rows or used + extra > max_bytes):
            yield batch
            batch, used, extra = [], BODY_OPENING + BODY_CLOSING, size
        batch.append(item)
        used += extra
    if batch:
        yield batch
