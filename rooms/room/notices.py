"""Changes to messages told to sockets: an edit, a deletion (a moderator's or its author's), reactions.

A change comes from the backend (every process hears of it) in the room's order, and goes to the room's
sockets here that asked for its feature: at once to a live socket, after the broadcasts waiting before it;
into the backlog of a socket still held, which is sent it in order once it goes live.
"""

from __future__ import annotations

from backends.changes import MessageChange
from rooms.change_frames import CHANGE_FEATURE_SET, CHANGE_FEATURES, encode_change
from rooms.protocol import Feature, text_frame
from rooms.room.fanout import LocalFanout, Member


class ChangeNotices:
    """The sockets of each room that asked for a change feature, and what each asked for."""

    def __init__(self, fanout: LocalFanout) -> None:
        self._fanout = fanout
        self._rooms: dict[str, dict[Member, frozenset[Feature]]] = {}  # only rooms with a socket that asked

    def join(self, member: Member, room: str, features: frozenset[Feature]) -> None:
        asked = features & CHANGE_FEATURE_SET
        if asked:
            self._rooms.setdefault(room, {})[member] = asked

    def leave(self, member: Member, room: str) -> None:
        """Safe to repeat."""
        listeners = self._rooms.get(room)
        if listeners is not None:
            listeners.pop(member, None)
            if not listeners:
                del self._rooms[room]

    def changed(self, change: MessageChange) -> None:
        """A message of ``change.room`` changed: tell the sockets here that asked for its feature."""
        self._fanout.changed(change)
        listeners = self._rooms.get(change.room)
        if not listeners:
            return
        feature = CHANGE_FEATURES[change.kind]
        frame = text_frame(encode_change(change))
        for member, asked in list(listeners.items()):
            if feature not in asked:
                continue
            if self._fanout.is_held(member, change.room):
                self._fanout.hold_change(member, change, len(frame))
            else:
                member.send_frames(frame)
