"""Where the backend delivers what it pushes to this process (``backends.base.DeliveryTarget``): each
kind to the part of the room layer that tells it to the sockets."""

from __future__ import annotations

from collections.abc import Callable

from backends.base import StoredMessage
from backends.changes import MessageChange
from rooms.room.fanout import LocalFanout
from rooms.room.notices import ChangeNotices
from rooms.room.presence import LocalPresence
from rooms.room.typing import TypingRelay


class RoomDelivery:
    """The backend's delivery target: messages and gaps go to the fan-out, presence changes, typing and
    changes to messages to what tells them to the sockets, moderation changes to the moderation in force."""

    __slots__ = ("_changes", "_fanout", "_moderation_changed", "_presence", "_typing")

    def __init__(
        self,
        fanout: LocalFanout,
        presence: LocalPresence,
        typing: TypingRelay,
        changes: ChangeNotices,
        moderation_changed: Callable[[], None],
    ) -> None:
        self._fanout = fanout
        self._presence = presence
        self._typing = typing
        self._changes = changes
        self._moderation_changed = moderation_changed

    def deliver(self, message: StoredMessage) -> None:
        self._fanout.deliver(message)

    def gap(self, room: str) -> None:
        self._fanout.gap(room)

    def signal(self, room: str, signal: str) -> None:
        self._typing.signal(room, signal)

    def presence_changed(self, room: str) -> None:
        self._presence.presence_changed(room)

    def changed(self, change: MessageChange) -> None:
        self._changes.changed(change)

    def moderation_changed(self) -> None:
        self._moderation_changed()
