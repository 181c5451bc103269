"""Make a log row storable in every database this app runs on, exactly as it came, or say why it cannot be.

Logs are users' chat text and whatever the chatbot logged with it. PostgreSQL refuses some of it:
``jsonb`` rejects the escape ``\\u0000`` ("it cannot be represented in PostgreSQL's text type") and
an unpaired surrogate escape such as ``\\ud83d`` (PostgreSQL docs, 8.14 "JSON Types"; a surrogate has no
UTF-8 form, RFC 3629 section 3, so it cannot reach the server as text either); ``varchar(255)`` refuses
longer text; a structure nested deep enough makes JSON encoders and parsers give up. One such row used
to fail its whole page, night after night. Here each value is made storable on the way in (the one
place logs enter the database), and a row that cannot be is refused on its own, with a reason a person
can act on.

**The encoding, lossless and reversible.** ``storable_json`` leaves every value PostgreSQL takes as it
is, and replaces what it refuses with a tagged wrapper, a JSON object with exactly one key:

- a string holding a NUL or a lone surrogate becomes ``{"$braintrust_ops:string": <escaped>}``, where
  ``<escaped>`` is the string with each backslash doubled and each NUL or lone surrogate written as
  ``\\u`` and four lowercase hex digits. Backslashes are escaped too, so a user who typed the six
  characters ``\\u0000`` gets them back, never a NUL;
- an object with such a key, or whose only key is one of the wrapper keys (a user's look-alike),
  becomes ``{"$braintrust_ops:object": [[key, value], ...]}``, its keys encoded like strings, so two
  keys never collide and a look-alike is never read back as a wrapper;
- a float of 1e16 or more (in magnitude) becomes ``{"$braintrust_ops:float": "<its JSON text>"}``:
  ``jsonb`` keeps a number as ``numeric`` (PostgreSQL docs 8.14, table 8.23), which prints without an
  exponent, so ``5.844065794252167e+16`` would come back as the integer 58440657942521670, another
  type and another value than the float Braintrust sent. Smaller floats keep their decimal point.

``original_json`` undoes it: an object with exactly one key, and that key a wrapper key, is a wrapper;
any other object is data. Every reader of stored content (the dataset push, the prompt text sent to
Claude) reads it through ``original_json``. The backup reads Braintrust, not the database.
"""

import json
import math
import re
from typing import Any

#: ``TaggedLog.log_id`` and ``root_span_id`` are ``varchar(255)``.
MAX_ID_LENGTH = 255
#: Far deeper than any chat log (a message list is about five levels), far shallower than the ~1000
#: levels at which Python's json module raises RecursionError (the wrappers add at most two a level).
MAX_JSON_DEPTH = 100
NUL = "\x00"
#: How much of an id a log line or a run record shows.
READABLE_ID_LENGTH = 100

STRING_KEY = "$braintrust_ops:string"
OBJECT_KEY = "$braintrust_ops:object"
FLOAT_KEY = "$braintrust_ops:float"
WRAPPER_KEYS = frozenset({STRING_KEY, OBJECT_KEY, FLOAT_KEY})
#: From here up Python writes a float with a positive exponent and no decimal point (repr's rule).
EXPONENT_FLOATS = 1e16

# What escape_text writes: a backslash, NUL, or any surrogate (in a Python string a surrogate is always
# lone: a pair decoded from JSON is one code point above U+FFFF).
_NEEDS_ESCAPE = re.compile("[\\\\\x00\ud800-\udfff]")
_ESCAPED = re.compile(r"\\(\\|u[0-9a-f]{4})")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Unstorable(ValueError):
    """This row cannot be stored as it is; the message says why, for a person."""


def is_storable_text(text: str) -> bool:
    """Whether PostgreSQL takes ``text`` as it is: no NUL, no lone surrogate."""
    return _UNSTORABLE.search(text) is None


def escape_text(text: str) -> str:
    """``text`` with backslashes doubled and NUL and lone surrogates as ``\\uXXXX``: storable, reversible."""
    return _NEEDS_ESCAPE.sub(_escape_one, text)


def _escape_one(match: re.Match) -> str:
    char = match.group()
    return "\\\\" if char == "\\" else f"\\u{ord(char):04x}"


def unescape_text(text: str) -> str:
    """The inverse of ``escape_text``."""
    return _ESCAPED.sub(_unescape_one, text)


def _unescape_one(match: re.Match) -> str:
    escaped = match.group(1)
    return "\\" if escaped == "\\" else chr(int(escaped[1:], 16))


def storable_json(value: Any, *, depth: int = 0) -> Any:
    """A parsed JSON value in a form every database stores, ``original_json`` of which is ``value`` again;
    Unstorable past MAX_JSON_DEPTH. A value PostgreSQL takes as it is comes back equal to itself."""
    if isinstance(value, str):
        return value if is_storable_text(value) else {STRING_KEY: escape_text(value)}
    if isinstance(value, float) and math.isfinite(value) and abs(value) >= EXPONENT_FLOATS:
        return {FLOAT_KEY: repr(value)}
    if isinstance(value, (dict, list)):
        if depth >= MAX_JSON_DEPTH:
            raise Unstorable(f"nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, list):
            return [storable_json(item, depth=depth + 1) for item in value]
        return _storable_object(value, depth=depth)
    return value


def _storable_object(value: dict, *, depth: int) -> dict:
    if not all(isinstance(key, str) for key in value):
        raise Unstorable("it holds an object with a key that is not text")  # parsed JSON never does
    items = {key: storable_json(item, depth=depth + 1) for key, item in value.items()}
    looks_like_a_wrapper = len(value) == 1 and next(iter(value)) in WRAPPER_KEYS
    if looks_like_a_wrapper or not all(map(is_storable_text, value)):
        return {OBJECT_KEY: [[storable_json(key), item] for key, item in items.items()]}
    return items


def original_json(value: Any) -> Any:
    """The value ``storable_json`` was given: wrappers decoded, everything else as stored."""
    if isinstance(value, list):
        return [original_json(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key == STRING_KEY and isinstance(inner, str):
            return unescape_text(inner)
        if key == FLOAT_KEY and isinstance(inner, str):
            return float(inner)
        if key == OBJECT_KEY and isinstance(inner, list):
            return {original_json(name): original_json(item) for name, item in inner}
    return {key: original_json(item) for key, item in value.items()}


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
    if not is_storable_text(value):
        # An id is a key, compared and looked up as it is: an encoded form would name no log in Braintrust.
        raise Unstorable(f"its {field} holds a NUL character or half an emoji")
    return value


def _kind(value: object) -> str:
    if isinstance(value, bool):  # before int: a bool is an int to isinstance
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    return "an array" if isinstance(value, list) else type(value).__name__


def readable_id(value: object) -> str:
    """An id as a person reads it in a log line or the run record: its JSON text, so the type and any
    surrounding spaces show ("12345" with quotes is a string, 12345 a number), bounded, and storable
    (JSON escapes NUL; a lone surrogate is written as its escape)."""
    # Equivalent mutants: ensure_ascii=None is falsy like False; "UTF-8" names the codec "utf-8" does.
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # not JSON at all: rows come parsed from JSON, so only a caller's mistake
        text = repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= READABLE_ID_LENGTH else text[: READABLE_ID_LENGTH - 1] + "…"
