"""A log's input and output as text Claude can read: JSON for structures, never Python repr."""

import json
import re
from typing import Any

TRUNCATION_NOTE = " …[truncated]"


def render(value: Any) -> str:
    """The value as text that can be sent: a lone surrogate (half an emoji: legal in JSON, no UTF-8 form,
    so no request body can carry it) is written as its escape, ``\\ud83d``. That is for reading only:
    the stored log keeps the character itself (``braintrust_ops.storable``)."""
    if value is None:
        return "(empty)"
    if isinstance(value, str):
        return _sendable(value)
    # default=str keeps odd values (dates, decimals) readable instead of failing the whole log.
    # mutmut's ensure_ascii=None is equivalent: json.dumps only tests the flag's truth.
    return _sendable(json.dumps(value, ensure_ascii=False, default=str))


def _sendable(text: str) -> str:
    # A lone surrogate is the only str with no UTF-8 form; written as the escape backslashreplace would write.
    return _LONE_SURROGATE.sub(_escaped, text)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters. Python strings index code points, so a cut
    never splits a character's encoding."""
    if len(text) <= limit:
        return text
    if limit < len(TRUNCATION_NOTE):
        # No room for the note: the note alone would break the promise of at most ``limit`` characters.
        return text[:limit]
    return text[: limit - len(TRUNCATION_NOTE)] + TRUNCATION_NOTE
