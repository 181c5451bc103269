"""What two refusals have in common: an error's shape, with the parts that vary from log to log left out.

A setup error (a model without strict tool use, a ``max_tokens`` over the model's limit) answers every
request with the same status, error type and message, except where the message quotes the request: a
number (the tokens counted, a length), a quoted value (a field's content). Compared raw, two logs refused
for the same reason would look different; compared as signatures, they match, and a refusal of another
kind does not.
"""

import re

# A quoted value ('...', "...", `...`) or a number (digits, with any separators between them): what a
# message copies from the request it refuses. An apostrophe inside a word ("log's") is not a quote.
_QUOTED = re.compile(r"(?<!\w)'[^']*'|\"[^\"]*\"|`[^`]*`")
_NUMBER = re.compile(r"\d+(?:[.,:_-]\d+)*")
#: how much of a normalised message a signature keeps: messages alike this far are the same error
MESSAGE_LENGTH = 160


def message_shape(message: str) -> str:
    """``message`` with quoted values as ``'…'``, numbers as ``#`` and runs of white space as one space."""
    shape = _QUOTED.sub("'…'", message)
    shape = _NUMBER.sub("#", shape)
    return " ".join(shape.split())[:MESSAGE_LENGTH]


def refusal_signature(*, status: int | None, error_type: str, message: str) -> str:
    """One line naming a refusal's kind: its HTTP status, its error type and its message's shape."""
    return f"HTTP {status} {' '.join(error_type.split())}: {message_shape(message)}"


def reply_signature(problem: str) -> str:
    """The same for an answer that could not be used (cut off, no list of tags): its problem's shape."""
    return f"reply: {message_shape(problem)}"
