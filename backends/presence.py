"""A room's presence as the backend contract carries it: one process's share, or the whole room's."""

from __future__ import annotations

from typing import NamedTuple

# A room's presence lists at most this many handles (docs/protocol.md): the first ones, sorted.
MAX_PRESENCE_HANDLES = 100


class RoomPresence(NamedTuple):
    """Who is in a room: its open sockets, and the distinct handles they announced, sorted (at most
    ``MAX_PRESENCE_HANDLES``). The same shape serves for one process's share and for the whole room."""

    online: int
    handles: tuple[str, ...]


def combined_presence(shares: list[RoomPresence]) -> RoomPresence:
    """The room's presence from every process's share of it."""
    handles: set[str] = set()
    for share in shares:
        handles.update(share.handles)
    return RoomPresence(sum(share.online for share in shares), tuple(sorted(handles)[:MAX_PRESENCE_HANDLES]))
