"""What a label was made from: the taggable tag set, as a fingerprint that changes when the set does.

A label chosen from another set (a tag added, a meaning reworded, one retired) is stale: a dataset
subscribing to a new tag would never see the logs labelled before it existed.
"""

import hashlib
import json
from collections.abc import Iterable

from braintrust_ops.taggable_tags import TaggableTag


def tagset_fingerprint(tags: Iterable[TaggableTag]) -> str:
    """32 hex digits of SHA-256 over the (name, meaning) pairs, sorted: the order Braintrust lists the
    tags in does not matter; a renamed tag or a reworded meaning does (the meaning is in the prompt)."""
    pairs = sorted((tag.name, tag.meaning) for tag in tags)
    # ensure_ascii=None (a mutant) is falsy, the same as False: equivalent.
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()[:32]
