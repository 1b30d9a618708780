"""A socket's replay of what it missed (``?since=``), paced by the socket.

The next page is read only once what was sent before has gone to the socket, and is at most half of what
the socket may still be sent, less what waits for it in its room: a socket that does not read costs about
its send buffer, and live frames arriving meanwhile have room.
"""

from __future__ import annotations

from backends.base import Backend, StoredMessage
from backends.changes import MessageChange
from rooms.change_frames import CHANGE_FEATURE_SET, CHANGE_FEATURES
from rooms.protocol import GAP, Feature, text_frame
from rooms.room.fanout import LocalFanout, Replayed, encode_item, item_position
from rooms.room.member import Member
from rooms.room.replay_reads import SharedReplayReads

REPLAY_PAGE = 200  # messages a replay reads at most at once
# Messages of a replay's first read, before it has seen how large the room's messages are.
FIRST_REPLAY_PAGE = 20


class Replays:
    """Sends held sockets what they missed, page by page, before they go live."""

    def __init__(self, backend: Backend, fanout: LocalFanout) -> None:
        self._backend = backend
        self._fanout = fanout
        self._reads = SharedReplayReads(backend)

    async def send(self, member: Member, room: str, since: str, features: frozenset[Feature] = frozenset()) -> Replayed:
        """Send the socket what it missed after ``since``; the last position it then has. A socket that
        asked for changes to messages (``features``) also gets, in the room's order, a frame for each change
        made after ``since`` to a message at or before it."""
        asked = features & CHANGE_FEATURE_SET
        replay = _Replay(member, room, since if asked else None, asked)
        seen_through, more, largest = await self._replay_page(replay, since, FIRST_REPLAY_PAGE, 0)
        while more:
            if not await member.drained() or not self._fanout.is_held(member, room):
                return Replayed(seen_through, frozenset(replay.sent))  # it is gone: nothing more is sent to it
            limit = max(1, min(REPLAY_PAGE, self._replay_budget(member, room) // largest))
            seen_through, more, largest = await self._replay_page(replay, seen_through, limit, largest)
        if seen_through != "0" and self._fanout.is_held(member, room):
            # What it has may be stored but not yet delivered here (the client saw it elsewhere, or the read
            # ran ahead of delivery): live, it would get it again.
            await self._fanout.delivered_through(room, seen_through)
        return Replayed(seen_through, frozenset(replay.sent))

    async def _replay_page(self, replay: _Replay, since: str, limit: int, largest: int) -> tuple[str, bool, int]:
        # Every page is a replay of its own, not a history read: pruning can take what follows ``since``
        # while the socket drains the page before, and the client must then hear of the gap.
        member, room = replay.member, replay.room
        read = await self._reads.replay(room, since, limit, replay.origin)
        if read.gap:
            member.send_frames(text_frame(GAP))
        if read.after != since:
            replay.origin = None  # the store was reset: the client holds none of the messages it has now
        items: list[StoredMessage | MessageChange] = list(read.page.messages)
        changes = [change for change in read.changes if CHANGE_FEATURES[change.kind] in replay.features]
        if changes:
            items = sorted([*items, *changes], key=lambda item: self._backend.id_key(item_position(item)))
        return self._send_page(replay, read.after, items, read.page.has_more, largest)

    def _replay_budget(self, member: Member, room: str) -> int:
        return member.send_room() // 2 - self._fanout.held_bytes(member, room)

    def _send_page(
        self,
        replay: _Replay,
        after: str,
        items: list[StoredMessage | MessageChange],
        has_more: bool,
        largest: int,
    ) -> tuple[str, bool, int]:
        """Send what of ``items`` fits the socket's budget (one at least); the last position sent,
        whether more is to be read, and the largest frame sent so far."""
        member, room = replay.member, replay.room
        budget = self._replay_budget(member, room)
        frames: list[bytes] = []
        size = 0
        for item in items:
            frame = text_frame(encode_item(item))
            if frames and size + len(frame) > budget:
                break  # the rest is read again once the socket has taken this
            frames.append(frame)
            size += len(frame)
            largest = max(largest, len(frame))
        if not frames or not self._fanout.is_held(member, room):  # a replay stops when its socket goes
            return after, False, largest
        member.send_frames(b"".join(frames), len(frames))
        replay.sent.update(item.at for item in items[: len(frames)] if isinstance(item, MessageChange))
        return item_position(items[len(frames) - 1]), has_more or len(frames) < len(items), largest


class _Replay:
    """One socket's replay: ``origin``, the position it resumed from (None: it hears of no changes, or the
    store was reset under it), and the change features it asked for."""

    __slots__ = ("features", "member", "origin", "room", "sent")

    def __init__(self, member: Member, room: str, origin: str | None, features: frozenset[Feature]) -> None:
        self.member = member
        self.room = room
        self.origin = origin
        self.features = features
        self.sent: set[str] = set()  # the positions of the changes sent
