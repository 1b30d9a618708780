"""Changes to messages told to sockets: an edit, a deletion (a moderator's or its author's), reactions.

A change comes from the backend (every process hears of it) in the room's order, and goes to the room's
sockets here that asked for its feature: to a live socket in the room's batch of the loop turn, in its
place among the messages; into the backlog of a socket still held, which is sent it in order once it goes
live (``rooms.room.fanout``).
"""

from __future__ import annotations

from backends.changes import MessageChange
from rooms.change_frames import CHANGE_FEATURE_SET, CHANGE_FEATURES, encode_change
from rooms.protocol import Feature, text_frame
from rooms.room.fanout import LocalFanout
from rooms.room.member import Member


class ChangeNotices:
    """Which change features each socket asked for, and the frame of each change."""

    def __init__(self, fanout: LocalFanout) -> None:
        self._fanout = fanout

    def join(self, member: Member, room: str, features: frozenset[Feature]) -> None:
        """After the socket joined the fan-out, which forgets what it asked for when it leaves."""
        self._fanout.ask_changes(member, room, features & CHANGE_FEATURE_SET)

    def changed(self, change: MessageChange) -> None:
        """A message of ``change.room`` changed: tell the sockets here that asked for its feature."""
        self._fanout.changed(change, CHANGE_FEATURES[change.kind], text_frame(encode_change(change)))
