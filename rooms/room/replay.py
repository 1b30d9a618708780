"""A socket's replay of what it missed (``?since=``), paced by the socket.

The next page is read only once what was sent before has gone to the socket, and is at most half of what
the socket may still be sent, less what waits for it in its room: a socket that does not read costs about
its send buffer, and live frames arriving meanwhile have room.
"""

from __future__ import annotations

from backends.base import Backend, HistoryPage
from rooms.protocol import GAP, encode_message, text_frame
from rooms.room.fanout import LocalFanout, Member

REPLAY_PAGE = 200  # messages a replay reads at most at once
# Messages of a replay's first read, before it has seen how large the room's messages are.
FIRST_REPLAY_PAGE = 20


class Replays:
    """Sends held sockets what they missed, page by page, before they go live."""

    def __init__(self, backend: Backend, fanout: LocalFanout) -> None:
        self._backend = backend
        self._fanout = fanout

    async def send(self, member: Member, room: str, since: str) -> str:
        """Send the socket what it missed after ``since``; the last id it then has."""
        seen_through, more, largest = await self._replay_page(member, room, since, FIRST_REPLAY_PAGE, 0)
        while more:
            if not await member.drained() or not self._fanout.is_held(member, room):
                return seen_through  # it is gone: nothing more is sent to it
            limit = max(1, min(REPLAY_PAGE, self._replay_budget(member, room) // largest))
            seen_through, more, largest = await self._replay_page(member, room, seen_through, limit, largest)
        if seen_through != "0" and self._fanout.is_held(member, room):
            # What it has may be stored but not yet delivered here (the client saw it elsewhere, or the read
            # ran ahead of delivery): live, it would get it again.
            await self._fanout.delivered_through(room, seen_through)
        return seen_through

    async def _replay_page(
        self, member: Member, room: str, since: str, limit: int, largest: int
    ) -> tuple[str, bool, int]:
        # Every page is a replay of its own, not a history read: pruning can take what follows ``since``
        # while the socket drains the page before, and the client must then hear of the gap.
        replay = await self._backend.replay(room, since, limit)
        if replay.gap:
            member.send_frames(text_frame(GAP))
        return self._send_page(member, room, replay.after, replay.page, largest)

    def _replay_budget(self, member: Member, room: str) -> int:
        return member.send_room() // 2 - self._fanout.held_bytes(member, room)

    def _send_page(
        self, member: Member, room: str, after: str, page: HistoryPage, largest: int
    ) -> tuple[str, bool, int]:
        """Send what of ``page`` fits the socket's budget (one message at least); the last id sent,
        whether more is to be read, and the largest frame sent so far."""
        budget = self._replay_budget(member, room)
        frames: list[bytes] = []
        size = 0
        for message in page.messages:
            frame = text_frame(encode_message(message))
            if frames and size + len(frame) > budget:
                break  # the rest is read again once the socket has taken this
            frames.append(frame)
            size += len(frame)
            largest = max(largest, len(frame))
        if not frames or not self._fanout.is_held(member, room):  # a replay stops when its socket goes
            return after, False, largest
        member.send_frames(b"".join(frames), len(frames))
        return page.messages[len(frames) - 1].id, page.has_more or len(frames) < len(page.messages), largest
