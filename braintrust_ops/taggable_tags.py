"""Which project tags Claude may use: those whose description says "dataset-tagging"."""

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

MARKER = "dataset-tagging"
_MARKER_RE = re.compile(re.escape(MARKER), re.IGNORECASE)
#: ``LogTag.name`` is varchar(255): a longer name could never be stored on a log.
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class TaggableTag:
    name: str
    # The description without the marker: the meaning Sefaria's staff wrote, passed to Claude.
    meaning: str


@dataclass(frozen=True)
class RefusedTag:
    name: str
    reason: str


def _has_control_character(text: str) -> bool:
    # A newline in a name would add a line of its own to the prompt's tag list; NUL cannot be stored.
    return any(unicodedata.category(char) == "Cc" for char in text)


def _has_lone_surrogate(text: str) -> bool:
    # Half an emoji (legal in JSON, no UTF-8 form): the name goes into every request's tool schema and each
    # stored label, the description into the system prompt, and a request body is UTF-8 (RFC 8259 section 8.1).
    return any(unicodedata.category(char) == "Cs" for char in text)


def _refusal(name: str, description: str) -> str | None:
    if len(name) > MAX_NAME_LENGTH:
        return f"its name is {len(name)} characters long, over {MAX_NAME_LENGTH}"
    if _has_control_character(name):
        # The test pins the sentence's start; its letter case further on ("nul...", mutmut) is not behaviour.
        return "its name holds a control character (a line break, a tab, NUL...)"
    # Any replacement without a control character in it ("XX XX", mutmut) gives the same answer.
    if _has_control_character(description.replace("\n", " ").replace("\t", " ")):
        return "its description holds a control character other than a line break or a tab"
    if _has_lone_surrogate(name) or _has_lone_surrogate(description):
        return "its name or description holds half an emoji (a lone surrogate), which no request can carry"
    return None


def select_taggable_tags(objects: Iterable[dict], refused: list[RefusedTag] | None = None) -> list[TaggableTag]:
    """Keep the tags marked for dataset tagging, in listing order, one per name.

    A tag with a null, empty or non-text description, or with no name, is never offered. A marked tag
    that cannot be offered safely (see ``_refusal``) is left out and, when ``refused`` is given,
    appended to it so the caller can warn about it by name.
    """
    selected: dict[str, TaggableTag] = {}
    for tag in objects:
        description = tag.get("description")
        name = tag.get("name")
        if not isinstance(description, str) or not _MARKER_RE.search(description):
            continue
        if not isinstance(name, str) or not name.strip():
            continue
        name = name.strip()
        reason = _refusal(name, description)
        if reason is not None:
            if refused is not None:
                refused.append(RefusedTag(name=name[:100], reason=reason))
            continue
        meaning = _MARKER_RE.sub(" ", description)
        meaning = re.sub(r"\s+", " ", meaning).strip(" .:;,-")
        selected.setdefault(name, TaggableTag(name=name, meaning=meaning))
    return list(selected.values())
