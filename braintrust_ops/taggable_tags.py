"""Which project tags Claude may use: those whose description says "dataset-tagging"."""

import re
from collections.abc import Iterable
from dataclasses import dataclass

MARKER = "dataset-tagging"
_MARKER_RE = re.compile(re.escape(MARKER), re.IGNORECASE)


@dataclass(frozen=True)
class TaggableTag:
    name: str
    # The description without the marker: the meaning Sefaria's staff wrote, passed to Claude.
    meaning: str


def select_taggable_tags(objects: Iterable[dict]) -> list[TaggableTag]:
    """Keep the tags marked for dataset tagging, in listing order, one per name.

    A tag with a null, empty or non-text description, or with no name, is never offered.
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
        meaning = _MARKER_RE.sub(" ", description)
        meaning = re.sub(r"\s+", " ", meaning).strip(" .:;,-")
        selected.setdefault(name, TaggableTag(name=name, meaning=meaning))
    return list(selected.values())
