"""Moderation on Redis: bans and room locks, shared by every process of a deployment.

* **Deleting** a message (a moderator's or its author's) is a change in the room's log
  (``backends.redis.log``): ``XDEL`` on its room's stream, and the deletion kept in the room's deleted
  set (``RedisKeys.deleted``) under its number in the room, which serves three ends: its size tells
  pruning (a gap) from deletions (none) in ``stream_facts``; a replay from a deleted id knows the id was
  once a message; and a resend of its client id is refused. The set grows with deletions only, and goes
  with the room.
* **Bans** are one hash, ban id -> ``"<created> <expires or -> <json>"``, times in microseconds of
  Redis's own clock, so that every process agrees on when a ban ends. Every script that touches bans
  drops the expired ones first: the hash never keeps a ban that ran out past the next call.
* **Locks** are one set of labels.

After a change of bans or locks, a notice goes out on the deployment's moderation channel, to which
every process's subscriber listens (``RedisKeys.moderation_channel``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backends.base import Ban, ban_timestamp, check_ban
from backends.errors import BackendUnavailable
from backends.redis.keys import RedisKeys
from backends.redis.scripts import ADD_BAN, BANS, LIFT_BAN, LOCK, LuaScript, run_script

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_from_microseconds(microseconds: str) -> str:
    """A time of Redis's clock (microseconds since the epoch, as text) in ISO 8601 UTC, as ``Ban`` has them."""
    return ban_timestamp(_EPOCH + timedelta(microseconds=int(microseconds)))


def _ban(ban_id: str, value: str) -> Ban:
    created, expires, encoded = value.split(" ", 2)
    fields = json.loads(encoded)
    return Ban(
        ban_id,
        fields["h"],
        fields["a"],
        fields["r"],
        fields["why"],
        iso_from_microseconds(created),
        None if expires == "-" else iso_from_microseconds(expires),
    )


class RedisModeration:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys

    async def add_ban(
        self, handle: str | None, address: str | None, room: str | None, seconds: float | None, reason: str
    ) -> Ban:
        check_ban(handle, address, seconds)
        fields = json.dumps({"h": handle, "a": address, "r": room, "why": reason}, ensure_ascii=False)
        args: list[str | int] = ["" if seconds is None else repr(seconds), fields, self._keys.moderation_channel]
        reply = await self._run("ban not stored", ADD_BAN, [self._keys.bans, self._keys.ban_ids], args)
        return _ban(str(reply[0]), str(reply[1]))

    async def bans(self) -> list[Ban]:
        flat = await self._run("bans not read", BANS, [self._keys.bans], [])
        found = [_ban(str(ban_id), str(value)) for ban_id, value in zip(flat[::2], flat[1::2], strict=True)]
        found.sort(key=lambda ban: int(ban.id))  # ids are issued in order: oldest first
        return found

    async def lift_ban(self, ban_id: str) -> bool:
        if not (ban_id.isascii() and ban_id.isdigit()):
            return False  # not an id this store issues
        args: list[str | int] = [ban_id, self._keys.moderation_channel]
        return bool(await self._run("ban not lifted", LIFT_BAN, [self._keys.bans], args))

    async def set_locked(self, room: str, locked: bool) -> None:
        args: list[str | int] = [room, "1" if locked else "", self._keys.moderation_channel]
        await self._run("room lock not changed", LOCK, [self._keys.locked], args)

    async def locked_rooms(self) -> frozenset[str]:
        rooms = await self._call("room locks not read", self._redis.smembers(self._keys.locked))
        return frozenset(cast(set[str], rooms))

    async def _run(self, failure: str, script: LuaScript, keys: list[str], args: list[str | int]) -> Any:
        return await self._call(failure, run_script(self._redis, script, keys, args))

    @staticmethod
    async def _call(failure: str, call: Any) -> Any:
        try:
            return await call
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"{failure}: {exc}") from None
