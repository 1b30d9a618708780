"""The rate policy every way in shares: token buckets per socket and per client address, and how many
sockets an address holds open; and how many searches an address makes a minute.

An address's bucket is shared by all its sockets and POSTs, and outlives them: reconnecting does not
refill it. An IPv6 client counts in its /64, its /56 and its /48 alike (``AddressBlocks``), each with a
bucket and a count of open sockets of its own, a multiple of one address's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from backends.address_blocks import AddressBlocks
from backends.token_bucket import AddressBuckets, TokenBucket
from rooms.access.addresses import limit_key

DEFAULT_SEARCHES_PER_MINUTE = 30
SECONDS_PER_MINUTE = 60


@dataclass(frozen=True, slots=True)
class Sender:
    """Who posts: the address key the limits count by, and the buckets a post must take a token from."""

    address: str
    buckets: tuple[TokenBucket, ...]

    def take(self) -> bool:
        """Spend a token of every bucket, or of none: a refused post costs the sender nothing."""
        now = time.monotonic()
        for bucket in self.buckets:
            if not bucket.has_token(now):
                return False
        for bucket in self.buckets:
            bucket.spend()
        return True


class RatePolicy:
    """How fast a sender may post and how many sockets an address may hold."""

    def __init__(
        self,
        messages_per_second: float,
        burst: int,
        address_messages_per_second: float,
        address_burst: int,
        connections_per_address: int,
        blocks: AddressBlocks,
        searches_per_minute: int = DEFAULT_SEARCHES_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = messages_per_second
        self._burst = burst
        self._max_connections = connections_per_address
        self._blocks = blocks
        self._by_address = AddressBuckets(address_messages_per_second, address_burst)
        # A minute's searches at once, refilled over the minute; ``clock`` is the searches' only.
        self._searches = AddressBuckets(searches_per_minute / SECONDS_PER_MINUTE, searches_per_minute)
        self._clock = clock
        # Only blocks with a socket open: an entry goes when its last socket closes.
        self._connections: dict[str, int] = {}

    def for_connection(self, address: str) -> Sender:
        """A socket's sender: its own bucket and its address's (and its blocks')."""
        key = limit_key(address)
        return Sender(key, (TokenBucket(self._rate, self._burst), *self._address_buckets(key)))

    def for_request(self, address: str) -> Sender:
        """An HTTP request's sender: its address's buckets, which the address's sockets share."""
        key = limit_key(address)
        return Sender(key, self._address_buckets(key))

    def _address_buckets(self, key: str) -> tuple[TokenBucket, ...]:
        return tuple(self._by_address.of(block) for block in self._blocks.of(key))

    def take_search(self, address: str) -> bool:
        """Count a search of ``address`` in each of its blocks; False (nothing counted) when one of them
        has made ``searches_per_minute`` (times the block's factor) in the last minute's worth."""
        now = self._clock()
        buckets = [self._searches.of(block, now) for block in self._blocks.of(limit_key(address))]
        if not all(bucket.has_token(now) for bucket in buckets):
            return False
        for bucket in buckets:
            bucket.spend()
        return True

    def open_connection(self, address: str) -> bool:
        """Count a socket of ``address`` as open in each of its blocks; False (and nothing counted) when
        one of them holds its limit."""
        blocks = self._blocks.of(limit_key(address))
        if any(self._connections.get(key, 0) >= self._max_connections * factor for key, factor in blocks):
            return False
        for key, _ in blocks:
            self._connections[key] = self._connections.get(key, 0) + 1
        return True

    def forget_idle(self) -> None:
        """Let go of what was kept for addresses that have gone: the buckets of blocks with no socket open
        that are full again (a new one starts the same), and the addresses' keys parsed; the tables are
        built anew, so that their storage is what is left, not what the crowd needed. Run after a crowd left
        (``rooms.service.collector``): a bucket dropped while a request holds it takes that request's token."""
        self._by_address.forget_full(time.monotonic(), keep=self._connections)
        self._searches.forget_full(self._clock())
        self._connections = dict(self._connections)
        limit_key.cache_clear()

    def addresses_remembered(self) -> int:
        """How many blocks of addresses have a message bucket kept, with a socket open or not."""
        return len(self._by_address)

    def addresses_with_sockets(self) -> int:
        """How many addresses (and blocks of them) this process counts sockets for: none once all have gone."""
        return len(self._connections)

    def close_connection(self, address: str) -> None:
        for key, _ in self._blocks.of(limit_key(address)):
            held = self._connections.get(key, 0) - 1
            if held > 0:
                self._connections[key] = held
            else:
                self._connections.pop(key, None)
