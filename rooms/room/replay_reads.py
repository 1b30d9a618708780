"""Replays' first reads, shared: sockets resuming a room from the same position wait for one store read.

After a restart every page of a big room comes back at once, most of them from the same id (the last
message they all received), and each would read the store for the same first page. Here the sockets that
ask for the same read while one is in flight wait together, and one read answers them all once that one is
done: at most one read of a room from a position is in flight, and one more waits behind it.

A read answers only the sockets that asked before it started. A socket asks once it is held in its room
(``LocalFanout.join``), so every message is either in the read or delivered to it after it was held: a
message committed after the read's snapshot is delivered after that, into the socket's backlog; a message
delivered before the socket was held was committed before the read started. A read that started before
a socket was held could miss a message delivered just before: it is never shared with that socket.
"""

from __future__ import annotations

import asyncio

from backends.base import Backend, Replay

_Key = tuple[str, str, int, str | None]


class SharedReplayReads:
    """``Backend.replay``, with the same read asked for meanwhile shared."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._in_flight: dict[_Key, asyncio.Future[Replay]] = {}
        # The read that starts once the one in flight is done: whoever asks meanwhile waits for it.
        self._next: dict[_Key, asyncio.Future[Replay]] = {}

    async def replay(self, room: str, since: str, limit: int, origin: str | None) -> Replay:
        key = (room, since, limit, origin)
        read = self._next.get(key)
        if read is None:
            read = self._next[key] = asyncio.ensure_future(self._read_after(key, self._in_flight.get(key)))
        # Shielded: a socket that goes away stops waiting, the others still get the read.
        return await asyncio.shield(read)

    async def _read_after(self, key: _Key, before: asyncio.Future[Replay] | None) -> Replay:
        if before is not None:
            await asyncio.wait([before])
        # From here on, who asks waits for the read after this one.
        read = self._next.pop(key)
        self._in_flight[key] = read
        try:
            return await self._backend.replay(*key)
        finally:
            if self._in_flight.get(key) is read:
                del self._in_flight[key]
