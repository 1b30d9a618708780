"""The errors a backend raises: part of the backend contract, free of the web layer and of ``rooms/``."""

from __future__ import annotations


class BackendError(Exception):
    """Base of every error a backend raises on purpose."""


class BackendUnavailable(BackendError):
    """The store cannot be reached or refused the operation; the caller may try again later."""


class BackendRefused(BackendError):
    """The store answered at start but refuses rooms for a reason no retry mends: authentication, a
    database that does not exist, a SQLite path that cannot be written (exit status 2 at once). Raised by
    ``start`` only; once running, every failure is ``BackendUnavailable``."""


class BackendConfigError(BackendError):
    """The backend's URL or options cannot be used; no restart will mend it (exit status 2)."""


class InvalidMessageId(BackendError):
    """A message id given by a client is not of the form this backend issues."""


class QuotaExceeded(BackendError):
    """A message's sender is over its address's quota (``AddressQuota``); the message was not stored."""


class MessageDeleted(BackendError):
    """A message's ``client_id`` names a message a moderator deleted: it was not stored again."""


class MessageNotFound(BackendError):
    """A change names a message its room does not hold (never stored, pruned, deleted, another room's)."""


class NotAuthor(BackendError):
    """A change to a message is asked by someone who is not its author."""


class TooManyReactions(BackendError):
    """A reaction would give a message more than ``MAX_REACTION_KINDS`` different emoji."""


class ReplyToMissing(BackendError):
    """A message replies to a message its room does not hold; it was not stored."""
