"""Presence on Redis: every process's share of a room's presence.

A room's presence is one hash, ``<prefix>presence:<room>``: a field per process with sockets in the
room, holding when it expires and the share (``{"n": sockets, "h": [handles]}``). A process rewrites its
fields every third of ``presence_ttl`` (default 30 s), so a process that dies is dropped by the next
reader after its fields expired, and everyone is told. The hash itself expires with its newest field:
presence keeps nothing once nobody is in the room.

A change is told on the room's pub/sub channel, marked with the process that sent it, so none hears its
own (``backends.redis.channel``).
"""

from __future__ import annotations

import asyncio
import json
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backends.base import RoomPresence, combined_presence
from backends.errors import BackendUnavailable
from backends.redis.delivery import Delivery
from backends.redis.keys import RedisKeys
from backends.redis.scripts import PRESENCE, Run, run_script, run_scripts
from backends.redis.tasks import cancel_and_wait

log = logging.getLogger(__name__)


def _encoded_share(share: RoomPresence) -> str:
    return json.dumps({"n": share.online, "h": list(share.handles)}, separators=(",", ":"), ensure_ascii=False)


def _decoded_share(text: str) -> RoomPresence:
    data = json.loads(text)
    return RoomPresence(int(data["n"]), tuple(data["h"]))


class RedisPresence:
    def __init__(self, redis: Redis, keys: RedisKeys, delivery: Delivery, ttl: float) -> None:
        self._redis = redis
        self._keys = keys
        self._delivery = delivery
        self._ttl_ms = int(ttl * 1000)
        self.origin = delivery.origin
        self._shares: dict[str, str] = {}  # room -> this process's share there, as recorded
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh(), name="redis-presence")

    async def stop_refreshing(self) -> None:
        if self._refresher is not None:
            await cancel_and_wait(self._refresher)
            self._refresher = None

    async def close(self) -> None:
        """Stop refreshing and remove this process's shares, so the rooms see its sockets go at once."""
        await self.stop_refreshing()
        rooms, self._shares = list(self._shares), {}
        if not rooms:
            return
        try:
            replies = await run_scripts(self._redis, [self._run(room, "", tell=True) for room in rooms])
            failed = [reply for reply in replies if isinstance(reply, Exception)]
        except (RedisError, OSError) as exc:
            failed = [exc]
        if failed:
            log.info("presence of this process not removed (it expires by itself): %s", failed[0])

    # -- presence ---------------------------------------------------------------------------------

    async def record(self, room: str, share: RoomPresence, changed: bool) -> RoomPresence:
        encoded = _encoded_share(share) if share.online else ""
        try:
            reply = await run_script(self._redis, *self._run(room, encoded, tell=changed))
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"presence of room {room} not recorded: {exc}") from None
        if encoded:
            self._shares[room] = encoded
        else:
            self._shares.pop(room, None)
        return combined_presence([_decoded_share(text) for text in reply[1:]])

    def _run(self, room: str, share: str, tell: bool) -> Run:
        """presence.lua on the room's hash, recording ``share`` ('' for none)."""
        args: list[str | int] = [self.origin, share, self._ttl_ms, self._keys.channel(room), "1" if tell else ""]
        return PRESENCE, [self._keys.presence(room)], args

    async def _refresh(self) -> None:
        """Rewrite this process's shares before they expire; a reader that drops another process's
        expired share tells the room, this process included."""
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            rooms = list(self._shares.items())
            if not rooms:
                continue
            try:
                replies = await run_scripts(self._redis, [self._run(room, share, tell=False) for room, share in rooms])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.debug("presence not refreshed: %s", exc)
                continue
            for (room, _), reply in zip(rooms, replies, strict=True):
                if isinstance(reply, list) and int(reply[0]) > 0:
                    self._delivery.presence_changed(room)
