"""New rooms per client address, counted in this process (the memory and SQL backends).

Only the store knows, as it writes, whether a message is a room's first: the count lives beside it. An
IPv6 sender is counted in its /64, /56 and /48 alike (``AddressQuota.blocks``).
"""

from __future__ import annotations

import threading
import time

from backends.address_blocks import AddressBlocks
from backends.base import AddressQuota
from backends.errors import QuotaExceeded
from backends.token_bucket import AddressBuckets

SECONDS_PER_HOUR = 3600


class NewRoomQuota:
    """A token bucket per block of addresses: ``new_rooms_per_hour`` times the block's factor at once,
    refilled over the hour (a block pushed out of the buckets starts again with its full hour's worth)."""

    def __init__(self, quota: AddressQuota | None) -> None:
        self._per_hour = quota.new_rooms_per_hour if quota is not None else 0
        self._blocks = quota.blocks if quota is not None else AddressBlocks()
        self._buckets = AddressBuckets(self._per_hour / SECONDS_PER_HOUR, self._per_hour)
        self._lock = threading.Lock()  # the SQL writer thread calls it; the loop may too

    def charge(self, sender: str) -> None:
        """Count a new room for ``sender`` in each of its blocks; ``QuotaExceeded`` (nothing counted) when
        one of them has none left."""
        if not sender or not self._per_hour:
            return
        with self._lock:
            buckets = [(block.key, self._buckets.of(block)) for block in self._blocks.of(sender)]
            now = time.monotonic()  # after the buckets made now, which start full as of their making
            for key, bucket in buckets:
                if not bucket.has_token(now):
                    whose = "this address" if key == sender else f"this address's network {key}"
                    raise QuotaExceeded(f"too many new rooms from {whose} (at most {bucket.capacity:.0f} an hour)")
            for _, bucket in buckets:
                bucket.spend()
