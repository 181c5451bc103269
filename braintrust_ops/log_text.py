"""A log's input and output as text Claude can read: JSON for structures, never Python repr."""

import json
from typing import Any

TRUNCATION_NOTE = " …[truncated]"


def render(value: Any) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, str):
        return value
    # default=str keeps odd values (dates, decimals) readable instead of failing the whole log.
    # mutmut's ensure_ascii=None is equivalent: json.dumps only tests the flag's truth.
    return json.dumps(value, ensure_ascii=False, default=str)


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters. Python strings index code points, so a cut
    never splits a character's encoding."""
    if len(text) <= limit:
        return text
    if limit < len(TRUNCATION_NOTE):
        # No room for the note: the note alone would break the promise of at most ``limit`` characters.
        return text[:limit]
    return text[: limit - len(TRUNCATION_NOTE)] + TRUNCATION_NOTE
