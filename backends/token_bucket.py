"""Token buckets: how fast a sender may do something, with a burst allowed at once; and a bucket per
block of client addresses (``backends.address_blocks``), for the blocks seen last.

The room layer takes them for messages (per socket, per address) and searches (per address); the stores
of one process for new rooms per address. The Redis backend keeps its address buckets in Redis, where
every process shares them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Container

from backends.address_blocks import Block

# Buckets of the blocks of addresses seen last. A block pushed out starts again with a full bucket, which
# takes this many other blocks in between: far more than one host has.
MAX_ADDRESSES = 100_000


class TokenBucket:
    """``burst`` tokens at once, ``rate`` per second sustained."""

    __slots__ = ("_rate", "_tokens", "_updated", "capacity")

    def __init__(self, rate: float, burst: float, now: float | None = None) -> None:
        self._rate = rate
        self.capacity = float(burst)
        self._tokens = float(burst)
        self._updated = time.monotonic() if now is None else now

    def take(self) -> bool:
        """Spend one token if there is one; False means the caller is over the limit."""
        if self.has_token(time.monotonic()):
            self._tokens -= 1
            return True
        return False

    def has_token(self, now: float) -> bool:
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        return self._tokens >= 1

    def spend(self) -> None:
        self._tokens -= 1

    def is_full(self, now: float) -> bool:
        """Whether it holds its whole burst as of ``now``: then it is no different from a new one."""
        return self._tokens + (now - self._updated) * self._rate >= self.capacity


class AddressBuckets:
    """A bucket per block of addresses: ``rate`` and ``burst`` times the block's factor, for the
    ``MAX_ADDRESSES`` blocks seen last."""

    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def of(self, block: Block, now: float | None = None) -> TokenBucket:
        """The block's bucket; one made now starts full as of ``now`` (the clock the caller reads)."""
        bucket = self._buckets.get(block.key)
        if bucket is None:
            bucket = self._buckets[block.key] = TokenBucket(self._rate * block.factor, self._burst * block.factor, now)
            if len(self._buckets) > MAX_ADDRESSES:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(block.key)
        return bucket

    def forget_full(self, now: float, keep: Container[str] = ()) -> None:
        """Drop the buckets full again as of ``now`` (but those of the blocks in ``keep``), since a block's
        new bucket would start the same. The table is built anew: a dict never shrinks as keys leave it,
        and its storage would stay the size of the crowd that has gone."""
        self._buckets = OrderedDict(
            (key, bucket) for key, bucket in self._buckets.items() if key in keep or not bucket.is_full(now)
        )

    def __len__(self) -> int:
        return len(self._buckets)
