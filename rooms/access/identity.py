"""Who sends a message: the identity a request proved (a token, a moderator token), or nobody in
particular. The room layer asks it what a message becomes when this identity sends it."""

from __future__ import annotations

from dataclasses import dataclass

from backends.base import NewMessage
from rooms.access.room_patterns import EVERY_ROOM, RoomPatterns
from rooms.protocol import user_author


@dataclass(frozen=True, slots=True)
class Identity:
    """Who sends: ``user`` (a token's ``sub``), the handle their messages carry (``name``; None: the one
    the client gives), whether they moderate the rooms they may enter (once admitted to a room: that
    room), and those rooms (``rooms``; None: every public room). ``moderator_token``: for one of the
    config's moderator tokens, who holds it (its name, or its fingerprint)."""

    user: str | None = None
    name: str | None = None
    moderator: bool = False
    rooms: RoomPatterns | None = None
    moderator_token: str | None = None

    @property
    def actor(self) -> str:
        """Who the audit log says acted: the moderator token's holder, else the signed token's ``sub``."""
        return self.moderator_token or self.user or "anyone"

    def covers(self, room: str, private: bool) -> bool:
        """Whether this identity may enter ``room`` by itself (without an invite)."""
        return self.rooms.matches(room) if self.rooms is not None else not private

    def handle(self, given: str) -> str:
        """The handle this identity goes by when the client gave ``given``: its own, if it has one."""
        return given if self.name is None else self.name

    def author(self, message: NewMessage) -> NewMessage:
        """``message`` as this identity sends it: under its name, whatever handle the frame said, with its
        ``user`` and ``moderator`` (as the access policy narrowed it to the room), which it stores.

        This is where a message learns who sent it, and the only place: whatever ``user`` or
        ``moderator`` the message came with is replaced, so nobody without a token passes for someone with
        one (``ANONYMOUS`` sends as nobody in particular, and not as a moderator)."""
        if self.user is None and self.name is None and not self.moderator and message.user is None:
            if not message.moderator:  # nobody in particular, as the frame said: most messages, as they came
                return message
        handle = message.handle if self.name is None else self.name
        # A token's sub makes its holder the author, whatever author key came along.
        author = message.author if self.user is None else user_author(self.user)
        if (
            handle == message.handle
            and self.user == message.user
            and self.moderator == message.moderator
            and author == message.author
        ):
            return message
        return message._replace(handle=handle, user=self.user, moderator=self.moderator, author=author)


ANONYMOUS = Identity()


def config_moderator(holder: str) -> Identity:
    """A moderator token from the config, held by ``holder`` (its name or fingerprint): no handle of its
    own (it posts with the handle it gives), every room."""
    return Identity(moderator=True, rooms=EVERY_ROOM, moderator_token=holder)
