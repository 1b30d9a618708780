"""Which failures at start no retry mends: the Redis backend's half of ``BackendRefused``.

A Redis that does not answer yet is worth waiting for; one that refuses the password (or wants one the
URL does not give), denies the user a command, or has no such database says the same on every try.
"""

from __future__ import annotations

from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    AuthorizationError,
    NoPermissionError,
    ResponseError,
)

REFUSALS = (AuthenticationError, AuthenticationWrongNumberOfArgsError, AuthorizationError, NoPermissionError)
# SELECT of a database the server does not have (``databases`` in redis.conf).
NO_SUCH_DATABASE = "DB index is out of range"


def refusal_reason(error: BaseException) -> str | None:
    """Why ``error`` (what start raised) is one no retry mends, in one line; None if a retry might. A
    cluster client or a pool may wrap the server's answer, so the errors it was raised from count too."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, REFUSALS) or (isinstance(seen, ResponseError) and NO_SUCH_DATABASE in str(seen)):
            return f"Redis refused: {seen}"
        seen = seen.__cause__ or seen.__context__
    return None
