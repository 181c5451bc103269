"""When a log read from Braintrust carries a person's label, and what it is.

People review labels in Braintrust's log view, where write-back puts them: they add or remove a taggable
tag, or add the project tag ``reviewed`` (``REVIEWED_TAG``) to say the tags are right as they stand. This
app keeps, per log, the taggable tags the source log carried when last read, or as its own writes left
them (``source_tags``). So when a later read finds other taggable tags, someone else changed them: that is
a correction, and the log's taggable tags as they now stand are a person's label. The ``reviewed`` tag
makes the tags as they stand a person's label even when nothing changed, and also on the first read of a
log: a log a person labelled before this app ever saw it counts once it carries ``reviewed``. Without it,
the tags a log carries when first read are where it starts (its own logging may have put them there).
"""

from collections.abc import Iterable
from dataclasses import dataclass

#: The project tag that marks a log's tags as reviewed by a person, as they stand.
REVIEWED_TAG = "reviewed"
#: The log metadata key a reviewer may fill with their name; Braintrust's row does not say who changed it.
REVIEWED_BY_KEY = "reviewed_by"


@dataclass(frozen=True)
class Review:
    #: the person's label: the log's taggable tags as they stand
    tags: list[str]
    #: against Claude's label (empty when Claude has none)
    added: list[str]
    removed: list[str]


def review_of(
    *,
    current: Iterable[str],
    source_tags: list[str] | None,
    human_tags: list[str] | None,
    claude_tags: list[str] | None,
    taggable: set[str],
    reviewed_tag: str = REVIEWED_TAG,
) -> Review | None:
    """The person's label the log now carries, or None when it carries none new.

    ``current``: the source log's tags as just read; ``source_tags``: the taggable tags it carried when last
    read or written (None: never read); ``human_tags``: the person's label already recorded."""
    held = set(current)
    tags = sorted(held & taggable)
    marked = reviewed_tag in held
    # Compared within today's taggable tags: a tag retired from the set since is no one's change.
    changed = source_tags is not None and tags != sorted(set(source_tags) & taggable)
    if not (marked or changed):
        return None
    if human_tags is not None and tags == sorted(human_tags):
        return None  # recorded already
    claude = set(claude_tags or [])
    return Review(tags=tags, added=sorted(set(tags) - claude), removed=sorted(claude - set(tags)))


def reviewer(metadata: object) -> str:
    """The reviewer's name from the log's metadata, when one was put there."""
    name = metadata.get(REVIEWED_BY_KEY) if isinstance(metadata, dict) else None
    return name.strip()[:255] if isinstance(name, str) else ""
