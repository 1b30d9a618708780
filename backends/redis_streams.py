"""The Redis backend: several processes, on one host or many, share rooms, broadcast and history.

Each room is one Redis Stream (``XADD ... MAXLEN``); the stream entry id is the message id. Storing
and publishing are one Lua script, so the order of pub/sub is the order of the stream on every
process. Fan-out is sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``, whose channels a Redis Cluster keeps on
their slot's shard) through one connection per process (``backends.redis_subscriber``),
which refills from the stream after every reconnect. Reads of history are ``backends.redis_reads``;
deleting messages, bans and locks are ``backends.redis_moderation``. Needs Redis 7.0 or newer.

URL: ``redis://[user:password@]host:6379/0`` (``rediss://`` for TLS), with redis-py's own query
options (``socket_timeout``, ``socket_connect_timeout``, ...) and ours (``backends.redis_options``);
``redis+sentinel://s1:26379,s2:26379/<master>/0`` for the master of a Sentinel set (``backends.redis_sentinel``);
``redis+cluster://h1:7000,h2:7000/`` for a Redis Cluster (``backends.redis_cluster``).

Redis must not evict keys (``maxmemory-policy noeviction``): an evicted stream is lost history.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
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
from backends.redis_cluster import ClusterShards, ClusterSubscriber, is_cluster_url, parse_cluster_url
from backends.redis_expiry import expire_idle_rooms
from backends.redis_layout import (
    QUOTA_NO_NEW_ROOM,
    QUOTA_OK,
    QUOTA_SCRIPT,
    STORE_SCRIPT,
    RedisKeys,
    StreamId,
    format_stream_id,
    parse_stream_id,
    store_result,
    unix_seconds,
)
from backends.redis_metrics import ClusterCounters
from backends.redis_migration import migrate_layout
from backends.redis_moderation import RedisModeration
from backends.redis_options import parse_redis_url
from backends.redis_presence import RedisPresence
from backends.redis_reads import read_history, read_replay
from backends.redis_scripts import Run, run_scripts
from backends.redis_sentinel import MasterCheck, SentinelPools, is_sentinel_url, parse_sentinel_url
from backends.redis_subscriber import StreamSubscriber, cancel_and_wait

log = logging.getLogger(__name__)

# A retried store call finds its own first attempt for this long (see STORE_SCRIPT).
RETRY_WINDOW_SECONDS = 60
# Below this, trim exactly: ``MAXLEN ~`` only drops whole stream nodes (100 entries by default), which
# for a small retain_per_room would keep many times too many. Above it the slack is under 10%.
APPROXIMATE_TRIM_FROM = 1000
MAX_CONNECTIONS = 50
MAX_STORE_PIPELINE = 500  # store scripts sent in one pipeline at most
# How long a batch's answers wait for pub/sub to deliver what it stored (see _answer_once_delivered).
DELIVERY_WAIT_SECONDS = 2.0
MIN_REDIS_VERSION = (7, 0)
# Bounded waits, so a store fails within seconds while Redis is away instead of hanging; a URL
# option of the same name wins. Refused connections fail at once.
CONNECTION_DEFAULTS: dict[str, Any] = {
    "socket_timeout": 2.0,
    "socket_connect_timeout": 2.0,
    "decode_responses": True,
}


# A message to store and its attempt token, which lets a retried call find its own first attempt
# (see STORE_SCRIPT).
_StoreCall = tuple[NewMessage, str]
_Outcome = tuple[asyncio.Future[StoreResult], StoreResult | BaseException]


def _settle_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


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
        self._quota = quota
        self._quota_args: list[str | int] = (
            [repr(quota.messages_per_second), quota.burst, quota.new_rooms_per_hour] if quota else ["0", 0, 0]
        )
        options = parse_redis_url(url, key_prefix, dedup_seconds, ping_interval)
        redis_url = options.redis_url
        self._retain = str(max(0, retain_per_room))
        self._trim = "~" if retain_per_room >= APPROXIMATE_TRIM_FROM else "="
        self._dedup_seconds = options.dedup_seconds
        self._ping_interval = options.ping_interval
        retry = Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), retries=2)
        self._sentinel: Sentinel | None = None
        self._shards: ClusterShards | None = None
        self._replicas_to_wait = 0
        master_check: MasterCheck | None = None
        try:
            pool: ConnectionPool | None = None
            if is_cluster_url(redis_url):
                cluster = parse_cluster_url(redis_url)
                self.kind = "redis-cluster"
                self._replicas_to_wait = cluster.replicas_to_wait
                self._shards = ClusterShards(cluster, CONNECTION_DEFAULTS, MAX_CONNECTIONS, retry)
                # Only to check the options now (see below); each shard's session makes its own.
                self._pubsub_pool = ConnectionPool(protocol=3, **CONNECTION_DEFAULTS, **cluster.connection_kwargs)
            elif is_sentinel_url(redis_url):
                target = parse_sentinel_url(redis_url)
                self.kind = "redis-sentinel"
                self._replicas_to_wait = target.replicas_to_wait
                pools = SentinelPools(
                    target, {**CONNECTION_DEFAULTS, **target.connection_kwargs}, MAX_CONNECTIONS, retry
                )
                self._sentinel, pool, self._pubsub_pool = pools.sentinel, pools.commands, pools.pubsub
                master_check = pools.master_check
            else:
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
        self._shas = {script: hashlib.sha1(script.encode()).hexdigest() for script in (STORE_SCRIPT, QUOTA_SCRIPT)}
        self._store_queue: list[tuple[_StoreCall, asyncio.Future[StoreResult]]] = []
        self._store_sender: asyncio.Task[None] | None = None
        # Answers go out batch after batch, each once this process has delivered what the batch stored.
        self._answering: asyncio.Future[None] | None = None
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
            for script in self._shas:
                await self._redis.script_load(script)
            await self._presence.start()
            await self._subscriber.start(timeout=5)
        except (RedisError, RedisClusterException, OSError) as exc:
            raise BackendUnavailable(f"Redis: {exc}") from None
        self._refresher = asyncio.create_task(self._refresh_counters(), name="redis-counters")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._store_sender is not None:
            await asyncio.wait([self._store_sender])  # every store queued before close is answered
        if self._answering is not None:
            await self._answering
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
        future: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
        if self._closed:
            future.set_exception(BackendUnavailable("the Redis backend is closed"))
            return future
        self._store_queue.append(((message, secrets.token_hex(8)), future))
        if self._store_sender is None:
            self._store_sender = asyncio.create_task(self._send_stores(), name="redis-stores")
        return future

    async def _send_stores(self) -> None:
        """Send what is queued as one pipeline, wait for its replies, repeat while stores are queued.

        One pipeline at a time, on one connection: Redis runs the scripts in the order they were
        queued, so a socket's messages keep their order however many are in flight. A retried pipeline
        stores nothing twice (each call's attempt token, see STORE_SCRIPT). With quotas, the senders'
        tokens are taken in a pipeline before (QUOTA_SCRIPT).
        """
        try:
            while self._store_queue:
                batch = self._store_queue[:MAX_STORE_PIPELINE]
                del self._store_queue[:MAX_STORE_PIPELINE]
                calls = [call for call, _ in batch]
                verdicts = [""] * len(calls)
                replies: list[Any]
                try:
                    verdicts = await self._quota_verdicts(calls)
                    replies = await self._run_store_scripts(calls, verdicts)
                except (RedisError, RedisClusterException, OSError) as exc:
                    replies = [exc] * len(calls)
                outcomes: list[_Outcome] = [
                    (future, BackendUnavailable(f"message not stored: {reply}"))
                    if isinstance(reply, Exception)
                    else (future, store_result(call[0], reply))
                    for (call, future), reply in zip(batch, replies, strict=True)
                ]
                figures = asyncio.ensure_future(self._settle_figures(calls, verdicts, replies))
                self._answering = asyncio.ensure_future(self._answer_once_delivered(self._answering, outcomes, figures))
        finally:
            self._store_sender = None

    async def _answer_once_delivered(
        self,
        earlier: asyncio.Future[None] | None,
        outcomes: list[_Outcome],
        figures: asyncio.Future[None],
    ) -> None:
        """Answer a batch's senders after the earlier batches, once this process has delivered what the
        batch stored and the deployment's figures count it. The script's reply can overtake its pub/sub
        message, and a sender must hear of its message through the room's broadcast before any later
        reply (an error, a resent duplicate)."""
        if earlier is not None:
            await asyncio.wait([earlier])  # how it ended is its own batch's concern
        newest: dict[str, StreamId] = {}
        for _, outcome in outcomes:
            if isinstance(outcome, StoreResult) and not outcome.duplicate:
                key = parse_stream_id(outcome.message.id)
                newest[outcome.message.room] = max(key, newest.get(outcome.message.room, key))
        for room, key in newest.items():
            await self._subscriber.wait_delivered(room, key, DELIVERY_WAIT_SECONDS)
        await asyncio.wait([figures])
        for future, outcome in outcomes:
            if isinstance(outcome, BaseException):
                _settle_exception(future, outcome)
            elif not future.done():
                future.set_result(outcome)

    async def _quota_verdicts(self, calls: list[_StoreCall]) -> list[str]:
        """Take a message token of each call's sender (see QUOTA_SCRIPT): the verdicts for STORE_SCRIPT."""
        quota = self._quota
        if quota is None:
            return [""] * len(calls)
        limited = [index for index, (message, _) in enumerate(calls) if message.sender]
        runs = [(QUOTA_SCRIPT, self._quota_keys(calls[index][0]), ["take", *self._quota_args]) for index in limited]
        verdicts = [QUOTA_OK] * len(calls)  # one without a sender address is not limited
        for index, reply in zip(limited, await self._run_scripts(runs), strict=True):
            if isinstance(reply, Exception):
                raise reply
            verdicts[index] = str(reply)
        return verdicts

    def _quota_keys(self, message: NewMessage) -> list[str]:
        return [self._keys.sent_by(message.sender), self._keys.rooms_made_by(message.sender)]

    async def _run_store_scripts(self, calls: list[_StoreCall], verdicts: list[str]) -> list[Any]:
        runs = [
            (STORE_SCRIPT, *self._script_arguments(call, verdict))
            for call, verdict in zip(calls, verdicts, strict=True)
        ]
        return await self._run_scripts(runs, self._replicas_to_wait)

    async def _run_scripts(self, runs: list[Run], replicas: int = 0) -> list[Any]:
        """Run scripts in as few round trips as the deployment allows, each reply in its place (an
        exception for one that failed); see ``backends.redis_scripts``."""
        if self._shards is not None:
            return await self._shards.run_scripts(self._shas, runs, replicas)
        return await run_scripts(self._redis, self._shas, runs, replicas)

    async def _settle_figures(self, calls: list[_StoreCall], verdicts: list[str], replies: list[Any]) -> None:
        """After a batch: give back the message tokens of what was not stored, charge the new rooms made,
        and count what was stored in the deployment's figures (busiest and active rooms, counters). Kept
        out of the store script, whose keys are the room's only, these are approximate: a failure here
        is logged and leaves the messages stored."""
        pipe = self._redis.pipeline(transaction=False)
        stored: dict[str, int] = {}
        active: dict[str, float] = {}
        deduplicated = 0
        settled: list[Run] = []
        for (message, _), verdict, reply in zip(calls, verdicts, replies, strict=True):
            status = int(reply[0]) if isinstance(reply, list) else None
            is_stored = status in (0, 2)  # 2: this very call, retried, stored it
            deduplicated += status == 1
            if verdict in (QUOTA_NO_NEW_ROOM, QUOTA_OK) and message.sender and self._quota is not None:
                if not is_stored:
                    settled.append((QUOTA_SCRIPT, self._quota_keys(message), ["refund", *self._quota_args]))
                elif status == 0 and int(reply[2]):
                    settled.append((QUOTA_SCRIPT, self._quota_keys(message), ["room", *self._quota_args]))
            if is_stored:
                stored[message.room] = stored.get(message.room, 0) + 1
                seconds = float(unix_seconds(message.timestamp))
                active[message.room] = max(seconds, active.get(message.room, seconds))
        for room, count in stored.items():
            pipe.zincrby(self._keys.busiest, count, room)
        if active:
            pipe.zadd(self._keys.active, active, gt=True)
        if stored:
            pipe.hincrby(self._keys.counters, "stored", sum(stored.values()))
        if deduplicated:
            pipe.hincrby(self._keys.counters, "deduplicated", deduplicated)
        if not len(pipe) and not settled:
            return
        try:
            quota_replies = await self._run_scripts(settled) if settled else []
            figure_replies = await pipe.execute(raise_on_error=False) if len(pipe) else []
            failed = [reply for reply in [*quota_replies, *figure_replies] if isinstance(reply, Exception)]
        except (RedisError, RedisClusterException, OSError) as exc:
            failed = [exc]
        if failed:
            log.warning("figures of %d stores not counted: %s", len(calls), failed[0])

    def _script_arguments(self, call: _StoreCall, verdict: str) -> tuple[list[str], list[str | int]]:
        message, attempt = call
        if message.client_id is not None:
            dedup_key, ttl = self._keys.client_id(message.room, message.client_id), self._dedup_seconds
        else:
            dedup_key, ttl = self._keys.attempt(message.room, attempt), RETRY_WINDOW_SECONDS
        room = message.room
        keys = [self._keys.stream(room), dedup_key, self._keys.deleted(room), self._keys.room_epoch(room)]
        args: list[str | int] = [
            message.handle,
            message.message,
            message.timestamp,
            message.client_id or "",
            attempt,
            ttl,
            self._retain,
            self._trim,
            self._keys.channel(message.room),
            verdict,
            message.user or "",
            "1" if message.moderator else "",
        ]
        return keys, args

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

    # -- moderation (backends.redis_moderation) ----------------------------------------------------

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
