"""Messages for tests: built as the wire module builds them, stored straight or posted through the room layer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from backends.base import Backend, NewMessage, StoredMessage, StoreResult, utc_timestamp
from backends.token_bucket import TokenBucket
from rooms.room.hub import RoomHub
from rooms.room.rates import Sender


def new_message(
    room: str, handle: str, text: str, client_id: str | None = None, user: str | None = None, moderator: bool = False
) -> NewMessage:
    """``user`` and ``moderator``: as the room layer sets them for a token's sender (``Identity.author``)."""
    return NewMessage(room, handle, text, client_id, utc_timestamp(), user=user, moderator=moderator)


def store_soon(
    backend: Backend, room: str, handle: str, text: str, client_id: str | None = None
) -> asyncio.Future[StoreResult]:
    return backend.store_soon(new_message(room, handle, text, client_id))


async def store(
    backend: Backend,
    room: str,
    handle: str,
    text: str,
    client_id: str | None = None,
    user: str | None = None,
    moderator: bool = False,
) -> StoreResult:
    return await backend.store(new_message(room, handle, text, client_id, user, moderator))


def unlimited() -> Sender:
    """A sender no rate limit holds back: tests that fill a room are not testing the limit."""
    return Sender("", (TokenBucket(rate=1e9, burst=10**9),))


async def post(hub: RoomHub, room: str, handle: str, text: str, client_id: str | None = None) -> StoreResult:
    """Through the room layer, as a socket or the API posts, without the rate limit."""
    return await hub.post(new_message(room, handle, text, client_id), unlimited())


async def fill(backend: Backend, room: str, count: int, handle: str = "ann") -> list[StoredMessage]:
    """``count`` messages stored one after the other in ``room``."""
    return [(await store(backend, room, handle, f"message {n}", None)).message for n in range(count)]


def stamped(days_ago: float) -> str:
    """A message's timestamp ``days_ago`` days back, for what ages rooms."""
    return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
