"""The errors of the room layer. A backend's own are in ``backends.errors``; a client's bad frame is the
wire module's ``ProtocolError``."""

from __future__ import annotations


class RoomsError(Exception):
    """Base of every error the room layer raises on purpose."""


class ConfigError(RoomsError):
    """The configuration cannot be used; no restart will mend it (exit status 2)."""


class RateLimited(RoomsError):
    """A sender is over its rate: the message was not stored."""


class TooManyConnections(RoomsError):
    """A socket's address (or one of its blocks) holds ``limits.connections_per_address`` open: 429."""


class ShuttingDown(RoomsError):
    """The server is stopping and takes no new messages; the client sends again once it is back."""


class Unauthenticated(RoomsError):
    """No credential where one is needed, or one that proves nothing (expired, forged): 401."""


class NotAdmitted(RoomsError):
    """A room this request may not enter; it is answered as if the room were not there (404)."""


class Forbidden(RoomsError):
    """A moderator's decision stands in the way of a message (a ban, a locked room): ``forbidden`` on a
    socket, 403 on the API; nothing was stored."""
