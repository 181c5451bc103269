"""``tag_logs --shard I/N``: which logs one of N parallel runs owns.

A log belongs to shard ``hash(log id) mod N``, with a fixed hash (BLAKE2b, not Python's ``hash``,
which changes from process to process), so every pod of a Kubernetes Indexed Job agrees on the split
without talking to the others, and a log stays in its shard from one night to the next.
"""

import hashlib
import re
from dataclasses import dataclass

_SHAPE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def shard_of(log_id: str, count: int) -> int:
    # "UTF-8" (mutmut) names the same codec; "big" is from_bytes' default since Python 3.11, spelt out
    # because the split must never move (test_the_split_is_pinned...): dropping it (mutmut) is equivalent.
    digest = hashlib.blake2b(log_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def owns(self, log_id: str) -> bool:
        return shard_of(log_id, self.count) == self.index

    @property
    def lock_name(self) -> str:
        """Runs of different shards work side by side; two runs of the same shard do not."""
        return f"tag_logs-shard-{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"I/N"`` with 0 <= I < N, as a Kubernetes Indexed Job numbers its pods (JOB_COMPLETION_INDEX)."""
    match = _SHAPE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not I/N (e.g. 0/4: the first of four shards)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise ValueError(f"{text!r}: the shard index must be from 0 to N-1 (here {max(count - 1, 0)})")
    return Shard(index=index, count=count)
