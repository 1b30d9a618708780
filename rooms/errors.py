"""The exception tree every layer shares.

Kept free of Tornado so that ``backends/`` can raise these without importing the web layer.
"""

from __future__ import annotations


class RoomsError(Exception):
    """Base of every error rooms raises on purpose."""


class ConfigError(RoomsError):
    """The configuration cannot be used; no restart will mend it (exit status 2)."""


class ProtocolError(RoomsError):
    """A client sent something the contract does not accept.

    ``code`` is the machine-readable error code of PROTOCOL.md (``invalid_json``, ``invalid_message``, ...).
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class BackendUnavailable(RoomsError):
    """The store cannot be reached or refused the operation; the caller may try again later."""


class ShuttingDown(BackendUnavailable):
    """The server is stopping and takes no new messages; the client sends again once it is back."""


class InvalidMessageId(RoomsError):
    """A message id given by a client is not of the form this backend issues."""
