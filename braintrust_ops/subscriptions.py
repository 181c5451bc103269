"""Which datasets want which tags: the ``[[relevant_tags: [...]]]`` marker in a dataset's description.

Tolerant in how a marker is written (spaces and newlines anywhere between the brackets), strict in
what it holds: a JSON array of non-empty strings. A dataset with a malformed marker is skipped with
a reason, never guessed at. Several markers in one description all count (their tags are united),
unless one of them is malformed.
"""

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from braintrust_ops.printable import printable

# The opening, up to the "[" of the list; the list itself is read by the JSON parser, which knows where it
# ends whatever the names hold ("]]" included, which a pattern for the body would take for the marker's end).
_MARKER_START_RE = re.compile(r"\[\[\s*relevant_tags\s*:\s*(?=\[)")
_MARKER_END_RE = re.compile(r"\s*\]\]")
_LOOKS_LIKE_MARKER_RE = re.compile(r"relevant_tags", re.IGNORECASE)
_JSON = json.JSONDecoder()


class MalformedMarker(ValueError):
    pass


def parse_relevant_tags(description: object) -> frozenset[str] | None:
    """The tags a description subscribes to; None when it has no marker; MalformedMarker when it
    has one that is not a JSON array of non-empty strings."""
    if not isinstance(description, str) or not description:
        return None
    starts = [match.end() for match in _MARKER_START_RE.finditer(description)]
    if not starts:
        if _LOOKS_LIKE_MARKER_RE.search(description):
            raise MalformedMarker(
                'mentions relevant_tags but has no marker of the form [[relevant_tags: ["tag", ...]]]'
            )
        return None
    tags: set[str] = set()
    for start in starts:
        try:
            value, end = _JSON.raw_decode(description, start)
        except json.JSONDecodeError as exc:
            raise MalformedMarker(f"the tag list is not valid JSON ({exc.msg})") from None
        if not _MARKER_END_RE.match(description, end):
            raise MalformedMarker("the tag list is not closed by ]] (or is followed by more than spaces before it)")
        # Unreachable, kept as a guard: the value starts at "[", so valid JSON there is a list.
        # Hence its mutants (no raise, another message) cannot be told apart: equivalent.
        if not isinstance(value, list):  # pragma: no mutate
            raise MalformedMarker("the marker does not hold a list")  # pragma: no mutate
        for item in value:
            if not isinstance(item, str):
                raise MalformedMarker(f"the list holds {json.dumps(item)}, which is not a tag name (a string)")
            if not item.strip():
                raise MalformedMarker("the list holds an empty tag name")
            tags.add(item.strip())
    return frozenset(tags)


@dataclass(frozen=True)
class Subscription:
    dataset_id: str
    dataset_name: str
    tags: frozenset[str]


@dataclass(frozen=True)
class SkippedDataset:
    dataset_id: str
    dataset_name: str
    reason: str


def subscriptions_from_datasets(datasets: Iterable[dict]) -> tuple[list[Subscription], list[SkippedDataset]]:
    """Subscriptions of the datasets with a valid, non-empty marker, and the ones skipped as malformed."""
    subscriptions, skipped = [], []
    for dataset in datasets:
        dataset_id = str(dataset.get("id") or "")
        # The name is a label (the id is the key): printable, so it can be printed, logged and stored as it is.
        name = printable(dataset.get("name") or dataset_id)
        if not dataset_id:
            continue
        try:
            tags = parse_relevant_tags(dataset.get("description"))
        except MalformedMarker as exc:
            skipped.append(SkippedDataset(dataset_id=dataset_id, dataset_name=name, reason=str(exc)))
            continue
        if tags:
            subscriptions.append(Subscription(dataset_id=dataset_id, dataset_name=name, tags=tags))
    return subscriptions, skipped


def match_logs_to_datasets(
    log_tags: Iterable[tuple[str, str]], subscriptions: Iterable[Subscription]
) -> dict[str, set[str]]:
    """Map each dataset id to the log ids that carry at least one of its tags.

    One pass over the (log_id, tag) pairs builds an inverted index tag -> logs; each dataset is then
    the union of its tags' sets (done in C). The cost is linear in the pairs plus the output, never
    logs x datasets. A tag is a string by construction.
    """
    subscriptions = list(subscriptions)
    wanted = {tag for subscription in subscriptions for tag in subscription.tags}
    logs_by_tag: dict[str, set[str]] = defaultdict(set)
    for log_id, tag in log_tags:
        # Only saves memory: `if True` (mutmut) gives the same result, since the union below reads
        # wanted tags only. Equivalent.
        if tag in wanted:
            logs_by_tag[tag].add(log_id)
    return {
        subscription.dataset_id: set().union(*(logs_by_tag.get(tag, ()) for tag in subscription.tags))
        for subscription in subscriptions
    }
