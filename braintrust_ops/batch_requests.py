"""A run's tagging requests cut into Message Batches that the API accepts.

Anthropic's limits (platform.claude.com/docs/en/api/messages/batches/create): 1 to 100,000 requests a
batch, each with a ``custom_id`` unique in its batch matching ``^[a-zA-Z0-9_-]{1,64}$``; a batch body of
at most 256 MB (SPEC.md). The body is built in memory to be sent, so this app's own cap is lower
(``CLAUDE_BATCH_MAX_BYTES``): it bounds the CronJob's memory, not only the API's patience.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

MAX_REQUESTS = 100_000
MAX_BYTES = 256_000_000


def custom_id(log_id: str) -> str:
    """A stable key of the log that the API accepts whatever the log id holds (any character, 255 long)."""
    # Any prefix, codec spelling or digest size the API accepts would do as well: the key is stored on the
    # log when its request is sent and results are matched by what was stored, never recomputed.
    digest = hashlib.blake2b(log_id.encode("utf-8", "surrogatepass"), digest_size=16)  # pragma: no mutate
    return "log-" + digest.hexdigest()  # pragma: no mutate


def request_bytes(request: dict[str, Any]) -> int:
    """An upper bound of the request's share of the body: the json module's ASCII escapes and default
    separators are never shorter than what the SDK sends, plus the comma between requests."""
    # A larger margin is as safe, only less full: "+ 2" would be equivalent for what the cap is for.
    return len(json.dumps(request)) + 1


def chunked(
    items: Iterable[T], *, weigh: Callable[[T], int], max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES
) -> Iterator[list[T]]:
    """Consecutive batches of ``items``, each within both caps by ``weigh`` (a request's bytes); an item
    over the byte cap goes alone: the API is then the judge of it."""
    max_requests, max_bytes = min(max_requests, MAX_REQUESTS), min(max_bytes, MAX_BYTES)
    batch: list[T] = []
    size = 0
    for item in items:
        weight = weigh(item)
        if batch and (len(batch) >= max_requests or size + weight > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += weight
    if batch:
        yield batch
