"""How the Redis backend's connections behave, on every deployment."""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

MAX_CONNECTIONS = 50
POOL_TIMEOUT_SECONDS = 5  # how long a command waits for a free connection of the pool
# Bounded waits, so a store fails within seconds while Redis is away instead of hanging; a URL
# option of the same name wins. Refused connections fail at once.
CONNECTION_DEFAULTS: dict[str, Any] = {
    "socket_timeout": 2.0,
    "socket_connect_timeout": 2.0,
    "decode_responses": True,
}


def command_retry() -> Retry:
    """How a command is retried on a dropped connection (the store script's attempt token makes it safe)."""
    return Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), retries=2)
