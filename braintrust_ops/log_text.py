"""A log's input and output as text Claude can read: JSON for structures, never Python repr."""

import json
from typing import Any

TRUNCATION_NOTE = " …[truncated]"


def render(value: Any) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, str):
        return _encodable(value)
    # default=str keeps odd values (dates, decimals) readable instead of failing the whole log.
    return _encodable(json.dumps(value, ensure_ascii=False, default=str))


def without_lone_surrogates(value: Any) -> Any:
    """``value`` with every string made encodable (see ``_encodable``), keys included. PostgreSQL's
    JSON types refuse a lone surrogate, so a log holding one could not be stored at all."""
    if isinstance(value, str):
        return _encodable(value)
    if isinstance(value, dict):
        return {without_lone_surrogates(key): without_lone_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_lone_surrogates(item) for item in value]
    return value


def _encodable(text: str) -> str:
    """A lone surrogate (half an emoji, legal in JSON) has no UTF-8 form, so the request could not be
    sent at all; it is written as its escape, ``\\ud83d``, instead."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters. Python strings index code points, so a cut
    never splits a character's encoding."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(TRUNCATION_NOTE), 0)] + TRUNCATION_NOTE
