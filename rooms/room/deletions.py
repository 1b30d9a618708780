"""Deletions told to sockets: a moderator's deletion comes from the backend (every process hears of it)
and goes out at once to the room's sockets here that asked for ``deletes``."""

from __future__ import annotations

from rooms.protocol import Feature, encode_delete, text_frame
from rooms.room.fanout import Member


class DeleteNotices:
    """The sockets of each room that asked for ``deletes``, and the delete frames sent to them."""

    def __init__(self) -> None:
        self._rooms: dict[str, set[Member]] = {}  # only rooms with a socket that asked

    def join(self, member: Member, room: str, features: frozenset[Feature]) -> None:
        if Feature.DELETES in features:
            self._rooms.setdefault(room, set()).add(member)

    def leave(self, member: Member, room: str) -> None:
        """Safe to repeat."""
        deleters = self._rooms.get(room)
        if deleters is not None:
            deleters.discard(member)
            if not deleters:
                del self._rooms[room]

    def deleted(self, room: str, message_id: str) -> None:
        """A moderator deleted a message of ``room``: tell the sockets here that asked for ``deletes``."""
        deleters = self._rooms.get(room)
        if not deleters:
            return
        frame = text_frame(encode_delete(message_id))
        for member in list(deleters):
            member.send_frames(frame)
