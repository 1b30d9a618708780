"""New rooms per client address, counted in this process (the memory and SQL backends).

Only the store knows, as it writes, whether a message is a room's first: the count lives beside it. An
IPv6 sender is counted in its /64, /56 and /48 alike (``AddressQuota.blocks``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from backends.address_blocks import AddressBlocks
from backends.base import AddressQuota
from backends.errors import QuotaExceeded

# Blocks remembered; one pushed out starts again with its full hour's worth.
MAX_ADDRESSES = 100_000
SECONDS_PER_HOUR = 3600


class NewRoomQuota:
    """A token bucket per block of addresses: ``new_rooms_per_hour`` times the block's factor at once,
    refilled over the hour."""

    def __init__(self, quota: AddressQuota | None) -> None:
        self._per_hour = quota.new_rooms_per_hour if quota is not None else 0
        self._blocks = quota.blocks if quota is not None else AddressBlocks()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # block -> (tokens, updated)
        self._lock = threading.Lock()  # the SQL writer thread calls it; the loop may too

    def charge(self, sender: str) -> None:
        """Count a new room for ``sender`` in each of its blocks; ``QuotaExceeded`` (nothing counted) when
        one of them has none left."""
        if not sender or not self._per_hour:
            return
        now = time.monotonic()
        with self._lock:
            levels = []
            for key, factor in self._blocks.of(sender):
                allowed = float(self._per_hour * factor)
                tokens, updated = self._buckets.pop(key, (allowed, now))
                tokens = min(allowed, tokens + (now - updated) * allowed / SECONDS_PER_HOUR)
                self._buckets[key] = (tokens, now)
                levels.append((key, tokens, allowed))
            for key, tokens, allowed in levels:
                if tokens < 1:
                    whose = "this address" if key == sender else f"this address's network {key}"
                    raise QuotaExceeded(f"too many new rooms from {whose} (at most {allowed:.0f} an hour)")
            for key, tokens, _ in levels:
                self._buckets[key] = (tokens - 1, now)
            while len(self._buckets) > MAX_ADDRESSES:
                self._buckets.popitem(last=False)
