"""Which row ids a long read has seen, in about 8 bytes an id.

A week's backup reads every span, millions of rows; a set of the id strings would cost over 100 bytes
each, and the backup's memory would grow with the week (its CronJob has 384 Mi). Here each id is kept
as a 64-bit hash: the newest in a small set, the rest in one sorted array of machine integers. Two ids
sharing a hash would drop one row: for 2.5 million rows the chance is about one in six million.
"""

import hashlib
import heapq
from array import array
from bisect import bisect_left

#: hashes kept in the set before they are merged into the sorted array
RECENT_LIMIT = 65_536


def _key(row_id: str) -> int:
    # "UTF-8" (mutmut) names the same codec, and "big" is from_bytes' default since Python 3.11 (dropping
    # it, mutmut, is equivalent): the keys only have to agree within one run.
    digest = hashlib.blake2b(row_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SeenIds:
    def __init__(self, recent_limit: int = RECENT_LIMIT):
        self._recent_limit = recent_limit
        self._recent: set[int] = set()
        # Empty until the first merge, which builds a new array("q"): "Q" here (mutmut) is equivalent.
        self._sorted = array("q")  # pragma: no mutate (equivalent, see above)

    def add(self, row_id: str) -> bool:
        """Remember ``row_id``; True when it had not been seen."""
        key = _key(row_id)
        if key in self._recent:
            return False
        index = bisect_left(self._sorted, key)
        if index < len(self._sorted) and self._sorted[index] == key:
            return False
        self._recent.add(key)
        if len(self._recent) >= self._recent_limit:
            self._sorted = array("q", heapq.merge(self._sorted, sorted(self._recent)))
            self._recent.clear()
        return True

    def __len__(self) -> int:
        return len(self._recent) + len(self._sorted)
