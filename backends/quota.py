"""New rooms per client address, counted in this process (the memory and SQL backends).

Only the store knows, as it writes, whether a message is a room's first: the count lives beside it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from backends.base import AddressQuota
from backends.errors import QuotaExceeded

# Addresses remembered; one pushed out starts again with its full hour's worth.
MAX_ADDRESSES = 100_000
SECONDS_PER_HOUR = 3600


class NewRoomQuota:
    """A token bucket per address: ``new_rooms_per_hour`` at once, refilled over the hour."""

    def __init__(self, quota: AddressQuota | None) -> None:
        self._per_hour = quota.new_rooms_per_hour if quota is not None else 0
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, updated)
        self._lock = threading.Lock()  # the SQL writer thread calls it; the loop may too

    def charge(self, sender: str) -> None:
        """Count a new room for ``sender``; ``QuotaExceeded`` (nothing counted) when it has none left."""
        if not sender or not self._per_hour:
            return
        now = time.monotonic()
        with self._lock:
            tokens, updated = self._buckets.pop(sender, (float(self._per_hour), now))
            tokens = min(float(self._per_hour), tokens + (now - updated) * self._per_hour / SECONDS_PER_HOUR)
            if tokens < 1:
                self._buckets[sender] = (tokens, now)
                raise QuotaExceeded(f"too many new rooms from this address (at most {self._per_hour} an hour)")
            self._buckets[sender] = (tokens - 1, now)
            if len(self._buckets) > MAX_ADDRESSES:
                self._buckets.popitem(last=False)
