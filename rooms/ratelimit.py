"""The rate policy every way in shares: token buckets, one per socket and one per address for POSTs."""

from __future__ import annotations

import time
from collections import OrderedDict


class TokenBucket:
    """``burst`` messages at once, ``rate`` per second sustained."""

    __slots__ = ("_capacity", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._capacity = float(burst)
        self._tokens = float(burst)
        self._updated = time.monotonic()

    def take(self) -> bool:
        """Spend one token if there is one; False means the caller is over the limit."""
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


# An address sends over HTTP what several sockets would; PROTOCOL.md's defaults for an address.
ADDRESS_RATE_FACTOR = 4
ADDRESS_BURST_FACTOR = 3
# Buckets of the addresses seen last; an address pushed out starts again with a full bucket.
MAX_ADDRESSES = 10000


class RatePolicy:
    """How fast a sender may post: a socket has a bucket of its own, and the POSTs of one address share
    one, so an HTTP client cannot escape the limit by making a request per message."""

    def __init__(self, messages_per_second: float, burst: int) -> None:
        self._rate = messages_per_second
        self._burst = burst
        self._by_address: OrderedDict[str, TokenBucket] = OrderedDict()

    def for_connection(self) -> TokenBucket:
        return TokenBucket(self._rate, self._burst)

    def for_address(self, address: str) -> TokenBucket:
        bucket = self._by_address.get(address)
        if bucket is None:
            bucket = self._by_address[address] = TokenBucket(
                self._rate * ADDRESS_RATE_FACTOR, self._burst * ADDRESS_BURST_FACTOR
            )
            if len(self._by_address) > MAX_ADDRESSES:
                self._by_address.popitem(last=False)
        else:
            self._by_address.move_to_end(address)
        return bucket
