"""Make a log row storable in every database this app runs on, or say why it cannot be.

Logs are users' chat text and whatever the chatbot logged with it. PostgreSQL refuses some of it
(SPEC.md, limits): ``jsonb`` and ``text`` refuse the NUL character and lone surrogates, ``varchar(255)``
refuses longer text, and a structure nested deep enough makes JSON encoders and parsers give up. One
such row used to fail its whole page, night after night. Here each value is made storable on the way
in (the one place logs enter the database), and a row that cannot be is refused on its own, with a
reason a person can act on.
"""

import json
from typing import Any

#: ``TaggedLog.log_id`` and ``root_span_id`` are ``varchar(255)``.
MAX_ID_LENGTH = 255
#: Far deeper than any chat log (a message list is about five levels), far shallower than the ~1000
#: levels at which Python's json module raises RecursionError.
MAX_JSON_DEPTH = 100
NUL = "\x00"
#: How much of an id a log line or a run record shows.
READABLE_ID_LENGTH = 100


class Unstorable(ValueError):
    """This row cannot be stored as it is; the message says why, for a person."""


def storable_text(text: str) -> str:
    """``text`` with each NUL and each lone surrogate (half an emoji: legal in JSON, no UTF-8 form)
    written as its JSON escape (``\\u0000``, ``\\ud83d``): readable, and storable everywhere."""
    if NUL in text:
        text = text.replace(NUL, "\\u0000")
    try:
        text.encode("utf-8")  # "UTF-8" (mutmut) names the same codec
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")  # so does "UTF-8" here
    return text


def storable_json(value: Any, *, depth: int = 0) -> Any:
    """A parsed JSON value with every string (keys included) made storable; Unstorable past MAX_JSON_DEPTH."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, (dict, list)):
        if depth >= MAX_JSON_DEPTH:
            raise Unstorable(f"nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            return {storable_text(str(key)): storable_json(item, depth=depth + 1) for key, item in value.items()}
        return [storable_json(item, depth=depth + 1) for item in value]
    return value


def storable_id(value: object, *, field: str) -> str:
    """An id exactly as Braintrust sent it, or Unstorable: it must keep naming the same log in Braintrust,
    and two ids must stay two rows. Never trimmed (" abc" and "abc" are two logs), never converted:
    ids are strings (OpenAPI ``ProjectLogsEvent.id`` and ``root_span_id``: ``"type": "string"``), and
    ``str(12345)`` would make the number one row with the log whose id is the string ``"12345"``.
    None (the field is absent) is the empty string; the caller decides whether that names a log."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Unstorable(
            f"its {field} is {_kind(value)}, not a string (an id is a string: OpenAPI ProjectLogsEvent.{field})"
        )
    if len(value) > MAX_ID_LENGTH:
        raise Unstorable(f"its {field} is {len(value)} characters long, over {MAX_ID_LENGTH}")
    if storable_text(value) != value:
        raise Unstorable(f"its {field} holds a NUL character or half an emoji")
    return value


def _kind(value: object) -> str:
    if isinstance(value, bool):  # before int: a bool is an int to isinstance
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {dict: "an object", list: "an array"}.get(type(value), type(value).__name__)


def readable_id(value: object) -> str:
    """An id as a person reads it in a log line or the run record: its JSON text, so the type and any
    surrounding spaces show ("12345" with quotes is a string, 12345 a number), bounded, and storable
    (JSON escapes NUL; a lone surrogate is written as its escape)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # not JSON at all: rows come parsed from JSON, so only a caller's mistake
        text = repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= READABLE_ID_LENGTH else text[: READABLE_ID_LENGTH - 1] + "…"
