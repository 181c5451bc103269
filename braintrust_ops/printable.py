"""Outside text (a dataset's or a tag's name, an error body) made safe to print on one line.

Names come from Braintrust, typed by anyone with access to the project. Printed raw, an ANSI escape
sequence in a name recolours the report or rewrites a line of it, a line break forges a line of its own,
and a lone surrogate (half an emoji: legal in JSON, with no UTF-8 form) makes writing to a UTF-8 stream,
or storing in PostgreSQL, raise. ``printable`` writes each such character as its Python escape, so the
name stays recognisable and the line stays one line.
"""

import re

# C0 and C1 control characters (ESC, CSI, line breaks, NUL...), the Unicode line and paragraph separators,
# the bidirectional embeddings, overrides and isolates that reorder what a terminal shows ("Trojan Source"),
# and lone surrogates. Not the joiners and marks that emoji and Hebrew text need (ZWJ, LRM, RLM).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    # Each unsafe character is one that repr() escapes (none is a quote or a backslash): \n, \x1b, \u202e.
    return repr(match.group())[1:-1]


def printable(text: object, *, limit: int | None = None) -> str:
    """``text`` as a string with control characters, line separators, bidi overrides and lone surrogates
    written as escapes (``\\x1b``, ``\\n``, ``\\u202e``, ``\\ud83d``); at most ``limit`` characters of the
    original text when given."""
    value = str(text)
    if limit is not None:
        value = value[:limit]
    return _UNSAFE.sub(_escape, value)
