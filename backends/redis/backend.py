"""The Redis backend: several processes, on one host or many, share rooms, broadcast and history.

Each room is one Redis Stream (``XADD ... MAXLEN``); the stream entry id is the message id. Storing
and publishing are one Lua script, so the order of pub/sub is the order of the stream on every
process; stores go in batches (``backends.redis.stores``). Fan-out is sharded pub/sub
(``SPUBLISH``/``SSUBSCRIBE``, whose channels a Redis Cluster keeps on their slot's shard) through one
connection per process, or per master of a cluster (``backends.redis.session``), which refills from
the stream after every reconnect. Reads of history are ``backends.redis.history``;
deleting messages, bans and locks are ``backends.redis.moderation``. Needs Redis 7.0 or newer.

URL: ``redis://[user:password@]host:6379/0`` (``rediss://`` for TLS), with redis-py's own query
options (``socket_timeout``, ``socket_connect_timeout``, ...) and ours (``backends.redis.options``);
``redis+sentinel://s1:26379,s2:26379/<master>/0`` for the master of a Sentinel set (``backends.redis.sentinel``);
``redis+cluster://h1:7000,h2:7000/`` for a Redis Cluster (``backends.redis.cluster``).

Redis must not evict keys (``maxmemory-policy noeviction``): an evicted stream is lost history.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Self, cast

from prometheus_client.registry import Collector
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisClusterException, RedisError

from backends.base import (
    AddressQuota,
    Backend,
    BackendOptions,
    Ban,
    HistoryPage,
    NewMessage,
    Replay,
    RoomPresence,
    RoomSummary,
    StoreResult,
)
from backends.errors import BackendConfigError, BackendUnavailable
from backends.redis.cluster import ClusterShards
from backends.redis.expiry import expire_idle_rooms
from backends.redis.history import read_history, read_replay
from backends.redis.keys import (
    RedisKeys,
    format_stream_id,
    parse_stream_id,
)
from backends.redis.metrics import ClusterCounters
from backends.redis.migration import migrate_layout
from backends.redis.moderation import RedisModeration
from backends.redis.options import ClusterTarget, SentinelTarget, ServerTarget, parse_redis_url
from backends.redis.presence import RedisPresence
from backends.redis.scripts import Run, load_scripts, run_scripts
from backends.redis.sentinel import MasterCheck, SentinelPools
from backends.redis.session import StreamSubscriber
from backends.redis.stores import StoreBatcher
from backends.redis.subscriber import ClusterSubscriber
from backends.redis.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 50
MIN_REDIS_VERSION = (7, 0)
# Bounded waits, so a store fails within seconds while Redis is away instead of hanging; a URL
# option of the same name wins. Refused connections fail at once.
CONNECTION_DEFAULTS: dict[str, Any] = {
    "socket_timeout": 2.0,
    "socket_connect_timeout": 2.0,
    "decode_responses": True,
}


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
    ) -> None:
        super().__init__()
        options = parse_redis_url(url, key_prefix, dedup_seconds, ping_interval)
        self._ping_interval = options.ping_interval
        retry = Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), retries=2)
        self._sentinel: Sentinel | None = None
        self._shards: ClusterShards | None = None
        self._replicas_to_wait = 0
        master_check: MasterCheck | None = None
        try:
            pool: ConnectionPool | None = None
            if isinstance(options.target, ClusterTarget):
                cluster = options.target
                self.kind = "redis-cluster"
                self._replicas_to_wait = cluster.replicas_to_wait
                self._shards = ClusterShards(cluster, CONNECTION_DEFAULTS, MAX_CONNECTIONS, retry)
                # Only to check the options now (see below); each shard's session makes its own.
                self._pubsub_pool = ConnectionPool(protocol=3, **CONNECTION_DEFAULTS, **cluster.connection_kwargs)
            elif isinstance(options.target, SentinelTarget):
                target = options.target
                self.kind = "redis-sentinel"
                self._replicas_to_wait = target.replicas_to_wait
                pools = SentinelPools(
                    target, {**CONNECTION_DEFAULTS, **target.connection_kwargs}, MAX_CONNECTIONS, retry
                )
                self._sentinel, pool, self._pubsub_pool = pools.sentinel, pools.commands, pools.pubsub
                master_check = pools.master_check
            elif isinstance(options.target, ServerTarget):
                redis_url = options.target.url
                pool = BlockingConnectionPool.from_url(
                    redis_url, max_connections=MAX_CONNECTIONS, timeout=5, retry=retry, **CONNECTION_DEFAULTS
                )
                # Only builds the pub/sub connection; the subscriber reconnects itself (no retry here).
                # RESP3, so that the stream can be read on it too, in turn with what it is pushed (see
                # StreamSubscriber.subscribe).
                self._pubsub_pool = ConnectionPool.from_url(redis_url, protocol=3, **CONNECTION_DEFAULTS)
            # redis-py hands unknown query options to the connection class; fail here, not at first use.
            self._pubsub_pool.make_connection()  # type: ignore[no-untyped-call]
        except (ValueError, TypeError) as exc:
            raise BackendConfigError(f"backend.url: {exc}") from None
        self._keys = RedisKeys(options.key_prefix, int(pool.connection_kwargs.get("db", 0)) if pool else 0)
        # The modules use the command API that a cluster client shares with a plain one; RedisCluster
        # follows the slots (and refuses a command across them).
        self._redis = cast(Redis, self._shards.cluster) if self._shards else Redis(connection_pool=pool)
        self._presence = RedisPresence(self._redis, self._keys, lambda: self._target, options.presence_ttl)
        self._moderation = RedisModeration(self._redis, self._keys)
        self._subscriber: StreamSubscriber | ClusterSubscriber
        if self._shards is not None:
            self._subscriber = ClusterSubscriber(
                self._shards, self._keys, lambda: self._target, self._ping_interval, self._presence.received
            )
        else:
            self._subscriber = StreamSubscriber(
                self._redis,
                self._pubsub_pool.make_connection,
                self._keys,
                lambda: self._target,
                self._ping_interval,
                self._presence.received,
                master_check.moved if master_check is not None else None,
            )
        self._stores = StoreBatcher(
            self._redis,
            self._keys,
            self._run_scripts,
            self._subscriber.wait_delivered,
            self._replicas_to_wait,
            retain_per_room,
            options.dedup_seconds,
            quota,
        )
        self._counters = ClusterCounters(self._subscriber.stats, lambda: self._subscriber.is_live)
        self._refresher: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def from_options(cls, options: BackendOptions) -> Self:
        return cls(options.url, options.retain_per_room, quota=options.quota)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            if self._shards is not None:
                await self._shards.start()
            info = await self._redis.info("server")
            version = tuple(int(part) for part in str(info["redis_version"]).split(".")[:2])
            if version < MIN_REDIS_VERSION:
                raise BackendConfigError(
                    f"backend.url: rooms needs Redis 7.0 or newer, this one is {info['redis_version']}"
                )
            if self._shards is None:  # no cluster ever held the earlier layout
                await migrate_layout(self._redis, self._keys)
            await load_scripts(self._redis)
            await self._presence.start()
            await self._subscriber.start(timeout=5)
        except (RedisError, RedisClusterException, OSError) as exc:
            raise BackendUnavailable(f"Redis: {exc}") from None
        self._refresher = asyncio.create_task(self._refresh_counters(), name="redis-counters")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._stores.close()  # every store queued before close is answered
        if self._refresher is not None:
            await cancel_and_wait(self._refresher)
        await self._presence.close()
        await self._subscriber.close()
        if self._shards is not None:
            await self._shards.close()
        else:
            await self._redis.aclose(close_connection_pool=True)
        await self._pubsub_pool.disconnect()
        if self._sentinel is not None:
            await self._sentinel.aclose()

    async def health(self) -> None:
        if not self._subscriber.is_live:
            raise BackendUnavailable(self._subscriber.down_reason)
        if self._shards is not None:
            # A shard down takes only its rooms (they answer unavailable); the server is down with all.
            if not await self._shards.answering():
                raise BackendUnavailable("no master of the Redis Cluster answers")
            return
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"Redis does not answer: {exc}") from None

    # -- messages --------------------------------------------------------------------------------

    def store_soon(self, message: NewMessage) -> asyncio.Future[StoreResult]:
        return self._stores.store_soon(message)

    async def _run_scripts(self, runs: list[Run], replicas: int = 0) -> list[Any]:
        """Run scripts in as few round trips as the deployment allows, each reply in its place (an
        exception for one that failed); see ``backends.redis.scripts``."""
        if self._shards is not None:
            return await self._shards.run_scripts(runs, replicas)
        return await run_scripts(self._redis, runs, replicas)

    async def history(self, room: str, limit: int, before: str | None = None, after: str | None = None) -> HistoryPage:
        return await read_history(self._redis, self._keys, room, limit, before, after)

    async def replay(self, room: str, since: str, limit: int) -> Replay:
        return await read_replay(self._redis, self._keys, room, since, limit)

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
        self._presence.relay(room, signal)

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

    async def delete_message(self, room: str, message_id: str) -> bool:
        return await self._moderation.delete_message(room, message_id)

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
