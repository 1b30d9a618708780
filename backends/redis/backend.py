"""The Redis backend: several processes, on one host or many, share rooms, broadcast and history.

Each room is one Redis Stream; the stream entry id is the message id. Storing and publishing are one
Lua script, so the order of pub/sub is the order of the stream on every process; stores go in batches
(``backends.redis.stores``). Fan-out is sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``, whose channels a
Redis Cluster keeps on their slot's shard) through one connection per process, or per master of a
cluster (``backends.redis.subscriber``), which refills from the stream after every reconnect. Reads of
history are ``backends.redis.history``, searches ``backends.redis.search``; the room's log (edits,
deletions, reactions), ``backends.redis.log``; bans and locks, ``backends.redis.moderation``; the audit
log, ``backends.redis.audit``. Where Redis is (one server, Sentinel, Cluster) is
``backends.redis.deployment``; the URL and its options, ``backends.redis.options``.
Needs Redis 7.0 or newer.

Redis must not evict keys (``maxmemory-policy noeviction``): an evicted stream is lost history.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Self, cast

from prometheus_client.registry import Collector
from redis.exceptions import RedisClusterException, RedisError

from backends.audit import DEFAULT_AUDIT_KEEP, AuditAction, AuditEntry
from backends.base import (
    AddressQuota,
    Backend,
    BackendOptions,
    Ban,
    DeliveryTarget,
    HistoryPage,
    MessageChange,
    NewMessage,
    Replay,
    RoomPresence,
    RoomSummary,
    StoredMessage,
    StoreResult,
)
from backends.errors import BackendConfigError, BackendRefused, BackendUnavailable
from backends.redis.audit import RedisAuditLog
from backends.redis.delivery import Delivery
from backends.redis.deployment import open_deployment
from backends.redis.entries import format_stream_id, parse_stream_id
from backends.redis.expiry import expire_idle_rooms
from backends.redis.history import read_history, read_message, read_replay
from backends.redis.log import RedisLog
from backends.redis.metrics import ClusterCounters
from backends.redis.moderation import RedisModeration
from backends.redis.options import parse_redis_url
from backends.redis.presence import RedisPresence
from backends.redis.refusals import refusal_reason
from backends.redis.scripts import load_scripts
from backends.redis.search import search_stream
from backends.redis.signals import SignalRelay
from backends.redis.stores import StoreBatcher
from backends.redis.subscriber import Subscriber
from backends.redis.tasks import cancel_and_wait
from backends.search import SearchPage, SearchQuery

log = logging.getLogger(__name__)

MIN_REDIS_VERSION = (7, 0)


class RedisBackend(Backend):
    kind = "redis"

    def __init__(
        self,
        url: str,
        retain_per_room: int = 10000,
        key_prefix: str | None = None,
        dedup_seconds: int | None = None,
        ping_interval: float | None = None,
        quota: AddressQuota | None = None,
        audit_keep: int = DEFAULT_AUDIT_KEEP,
    ) -> None:
        super().__init__()
        options = parse_redis_url(url, key_prefix, dedup_seconds, ping_interval)
        self._ping_interval = options.ping_interval
        self._deployment = open_deployment(options)
        self.kind = self._deployment.kind
        self._redis = self._deployment.commands
        self._keys = self._deployment.keys
        self._delivery = Delivery(origin=secrets.token_hex(6))
        self._presence = RedisPresence(self._redis, self._keys, self._delivery, options.presence_ttl)
        self._signals = SignalRelay(self._redis, self._keys, self._delivery.origin)
        self._moderation = RedisModeration(self._redis, self._keys)
        self._audit = RedisAuditLog(self._redis, self._keys, audit_keep)
        self._subscriber = Subscriber(self._deployment, self._delivery, self._ping_interval)
        self._stores = StoreBatcher(self._deployment, self._subscriber, retain_per_room, options.dedup_seconds, quota)
        self._log = RedisLog(self._deployment, self._subscriber)
        self._counters = ClusterCounters(self._subscriber)
        self._refresher: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def from_options(cls, options: BackendOptions) -> Self:
        return cls(options.url, options.retain_per_room, quota=options.quota, audit_keep=options.audit_keep)

    def set_delivery_target(self, target: DeliveryTarget) -> None:
        super().set_delivery_target(target)
        self._delivery.target = target

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._deployment.start()
            info = await self._redis.info("server")
            version = tuple(int(part) for part in str(info["redis_version"]).split(".")[:2])
            if version < MIN_REDIS_VERSION:
                raise BackendConfigError(
                    f"backend.url: rooms needs Redis 7.0 or newer, this one is {info['redis_version']}"
                )
            await self._deployment.upgrade_layout()
            await load_scripts(self._redis)
            await self._presence.start()
            await self._subscriber.start(timeout=5)
        except (RedisError, RedisClusterException, OSError) as exc:
            reason = refusal_reason(exc)
            if reason is not None:
                raise BackendRefused(reason) from None
            raise BackendUnavailable(f"Redis: {exc}") from None
        self._refresher = asyncio.create_task(self._refresh_counters(), name="redis-counters")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._stores.close()  # every store queued before close is answered
        if self._refresher is not None:
            await cancel_and_wait(self._refresher)
        await self._signals.close()
        await self._presence.close()
        await self._subscriber.close()
        await self._deployment.close()

    async def health(self) -> None:
        if not self._subscriber.is_live:
            raise BackendUnavailable(self._subscriber.down_reason)
        await self._deployment.health()

    # -- messages --------------------------------------------------------------------------------

    def store_soon(self, message: NewMessage) -> asyncio.Future[StoreResult]:
        return self._stores.store_soon(message)

    async def history(self, room: str, limit: int, before: str | None = None, after: str | None = None) -> HistoryPage:
        return await read_history(self._redis, self._keys, room, limit, before, after)

    async def search(self, room: str, query: SearchQuery, limit: int, before: str | None = None) -> SearchPage:
        return await search_stream(self._redis, self._keys, room, query, limit, before)

    async def replay(self, room: str, since: str, limit: int, origin: str | None = None) -> Replay:
        return await read_replay(self._redis, self._keys, room, since, limit, origin)

    async def message(self, room: str, message_id: str) -> StoredMessage | None:
        return await read_message(self._redis, self._keys, room, message_id)

    async def edit_message(
        self, room: str, message_id: str, text: str, edited: str, authors: frozenset[str]
    ) -> MessageChange:
        return await self._log.edit(room, message_id, text, edited, authors)

    async def react(self, room: str, message_id: str, reactor: str, emoji: str, on: bool) -> MessageChange | None:
        return await self._log.react(room, message_id, reactor, emoji, on)

    async def delete_message(self, room: str, message_id: str, authors: frozenset[str] | None = None) -> bool:
        return await self._log.delete(room, message_id, authors)

    # -- fan-out ---------------------------------------------------------------------------------

    async def subscribe(self, room: str) -> str:
        return format_stream_id(await self._subscriber.subscribe(room, timeout=5))

    async def unsubscribe(self, room: str) -> None:
        await self._subscriber.unsubscribe(room)

    # -- across processes ------------------------------------------------------------------------

    async def busiest_rooms(self, limit: int) -> list[RoomSummary]:
        try:
            ranked = cast(
                list[tuple[str, float]], await self._redis.zrevrange(self._keys.busiest, 0, limit - 1, withscores=True)
            )
            pipe = self._redis.pipeline(transaction=False)
            for label, _ in ranked:
                pipe.xrevrange(self._keys.stream(label), "+", "-", 1)
            newest = await pipe.execute() if ranked else []
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"busiest rooms not read: {exc}") from None
        rooms = [
            RoomSummary(label, int(score), entries[0][1]["t"] if entries else None)
            for (label, score), entries in zip(ranked, newest, strict=True)
        ]
        rooms.sort(key=lambda summary: (-summary.message_count, summary.label))
        return rooms

    async def presence(self, room: str, share: RoomPresence, changed: bool) -> RoomPresence:
        return await self._presence.record(room, share, changed)

    def relay(self, room: str, signal: str) -> None:
        self._signals.relay(room, signal)

    def metrics_collectors(self) -> list[Collector]:
        return [self._counters]

    async def _refresh_counters(self) -> None:
        """Keep the cluster totals fresh in the background, so a scrape never waits on Redis."""
        while True:
            try:
                self._counters.totals = cast(dict[str, str], await self._redis.hgetall(self._keys.counters))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.debug("cluster counters not refreshed: %s", exc)
            except Exception:
                log.exception("cluster counters not refreshed")
            await asyncio.sleep(self._ping_interval)

    async def expire_rooms(self, idle_since: str) -> int:
        try:
            return await expire_idle_rooms(self._redis, self._keys, idle_since)
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"idle rooms not removed: {exc}") from None

    def id_key(self, message_id: str) -> tuple[int, ...]:
        return parse_stream_id(message_id)

    # -- moderation (backends.redis.moderation) ----------------------------------------------------

    async def add_ban(
        self, handle: str | None, address: str | None, room: str | None, seconds: float | None, reason: str
    ) -> Ban:
        return await self._moderation.add_ban(handle, address, room, seconds, reason)

    async def bans(self) -> list[Ban]:
        return await self._moderation.bans()

    async def lift_ban(self, ban_id: str) -> bool:
        return await self._moderation.lift_ban(ban_id)

    async def set_locked(self, room: str, locked: bool) -> None:
        await self._moderation.set_locked(room, locked)

    async def locked_rooms(self) -> frozenset[str]:
        return await self._moderation.locked_rooms()

    async def record_audit(self, action: AuditAction) -> AuditEntry:
        return await self._audit.record(action)

    async def audit_page(self, limit: int, before: int | None = None) -> list[AuditEntry]:
        return await self._audit.page(limit, before)
