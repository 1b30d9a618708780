"""Storing messages on Redis in batches: one pipeline of store scripts at a time, each sender's
quota taken before it and the deployment's figures counted after it, and the answers sent once this
process has delivered what a batch stored (see ``StoreBatcher``)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from redis.exceptions import RedisClusterException, RedisError

from backends.address_blocks import AddressBlocks
from backends.base import AddressQuota, NewMessage, StoredMessage, StoreResult
from backends.errors import (
    BackendError,
    BackendUnavailable,
    InvalidMessageId,
    MessageDeleted,
    QuotaExceeded,
    ReplyToMissing,
)
from backends.redis.deployment import Deployment
from backends.redis.entries import StreamId, as_it_stands, flat_entry_message, parse_stream_id, unix_seconds
from backends.redis.scripts import QUOTA, STORE, Run
from backends.redis.subscriber import Subscriber

log = logging.getLogger(__name__)

# A retried store call finds its own first attempt for this long (see store.lua).
RETRY_WINDOW_SECONDS = 60
# A room's stream is trimmed once it holds this fraction of what it keeps more (at least one): a big room
# reads what it trims (to record the newest, see store.lua) once per chunk, and keeps at most 1% more.
TRIM_CHUNK_DIVISOR = 100
MAX_STORE_PIPELINE = 500  # store scripts sent in one pipeline at most
# How long a batch's answers wait for pub/sub to deliver what it stored (see _answer_once_delivered).
DELIVERY_WAIT_SECONDS = 2.0

# What store.lua answers for a message it did not store as new, and the quota verdicts it takes (quota.lua).
OVER_MESSAGE_QUOTA = 3
OVER_ROOM_QUOTA = 4
DELETED_BEFORE = 5
REPLY_TO_MISSING = 6
QUOTA_OVER, QUOTA_NO_NEW_ROOM, QUOTA_OK = "0", "1", "2"


def store_result(message: NewMessage, reply: list[Any]) -> StoreResult | BackendError:
    status = int(reply[0])
    if status == REPLY_TO_MISSING:
        return ReplyToMissing(f"this room holds no message {message.reply_to}")
    if status == DELETED_BEFORE:
        return MessageDeleted("a moderator deleted the message with this client_id; it is not stored again")
    if status == OVER_MESSAGE_QUOTA:
        return QuotaExceeded("too many messages from this address; slow down")
    if status == OVER_ROOM_QUOTA:
        return QuotaExceeded("too many new rooms from this address")
    entry_id = str(reply[1])
    if status == 0:
        return StoreResult(
            StoredMessage(
                entry_id,
                message.room,
                message.handle,
                message.message,
                message.timestamp,
                message.client_id,
                message.user,
                message.moderator,
                message.reply_to,
                message.author,
            )
        )
    earlier = as_it_stands(flat_entry_message(message.room, entry_id, reply[2]), reply[3] or None)
    return StoreResult(earlier, duplicate=status == 1)


# A message to store and its attempt token, which lets a retried call find its own first attempt
# (see store.lua).
_StoreCall = tuple[NewMessage, str]
_Outcome = tuple[asyncio.Future[StoreResult], StoreResult | BaseException]


def _settle_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class StoreBatcher:
    """``Backend.store_soon`` for the Redis backend: the deployment runs the scripts (one Redis, or each
    room's shard; the stores with WAIT for its replicas), and the subscriber says when this process has
    delivered what a batch stored."""

    def __init__(
        self,
        deployment: Deployment,
        subscriber: Subscriber,
        retain_per_room: int,
        dedup_seconds: int,
        quota: AddressQuota | None,
    ) -> None:
        self._deployment = deployment
        self._redis = deployment.commands
        self._keys = deployment.keys
        self._subscriber = subscriber
        self._retain = str(max(0, retain_per_room))
        self._trim_chunk = str(max(1, retain_per_room // TRIM_CHUNK_DIVISOR))
        self._dedup_seconds = dedup_seconds
        self._quota = quota
        self._blocks = quota.blocks if quota is not None else AddressBlocks()
        self._quota_args: list[str | int] = (
            [repr(quota.messages_per_second), quota.burst, quota.new_rooms_per_hour] if quota else ["0", 0, 0]
        )
        self._store_queue: list[tuple[_StoreCall, asyncio.Future[StoreResult]]] = []
        self._store_sender: asyncio.Task[None] | None = None
        # Answers go out batch after batch, each once this process has delivered what the batch stored.
        self._answering: asyncio.Future[None] | None = None
        self._closed = False

    async def close(self) -> None:
        """Refuse new stores; return once every store queued before is answered."""
        self._closed = True
        if self._store_sender is not None:
            await asyncio.wait([self._store_sender])
        if self._answering is not None:
            await self._answering

    def store_soon(self, message: NewMessage) -> asyncio.Future[StoreResult]:
        future: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
        if self._closed:
            future.set_exception(BackendUnavailable("the Redis backend is closed"))
            return future
        if message.reply_to is not None:
            try:
                parse_stream_id(message.reply_to)
            except InvalidMessageId:
                future.set_exception(ReplyToMissing(f"this room holds no message {message.reply_to}"))
                return future
        self._store_queue.append(((message, secrets.token_hex(8)), future))
        if self._store_sender is None:
            self._store_sender = asyncio.create_task(self._send_stores(), name="redis-stores")
        return future

    async def _send_stores(self) -> None:
        """Send what is queued as one pipeline, wait for its replies, repeat while stores are queued.

        One pipeline at a time, on one connection: Redis runs the scripts in the order they were
        queued, so a socket's messages keep their order however many are in flight. A retried pipeline
        stores nothing twice (each call's attempt token, see store.lua). With quotas, the senders'
        tokens are taken in a pipeline before (quota.lua).
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
        """Take a message token of each call's sender (see quota.lua): the verdicts for store.lua."""
        quota = self._quota
        if quota is None:
            return [""] * len(calls)
        limited = [index for index, (message, _) in enumerate(calls) if message.sender]
        runs = [self._quota_run(calls[index][0], "take") for index in limited]
        verdicts = [QUOTA_OK] * len(calls)  # one without a sender address is not limited
        for index, reply in zip(limited, await self._deployment.run_scripts(runs), strict=True):
            if isinstance(reply, Exception):
                raise reply
            verdicts[index] = str(reply)
        return verdicts

    def _quota_run(self, message: NewMessage, action: str) -> Run:
        """quota.lua's ``action`` on the buckets of every block the message's sender counts in."""
        blocks = self._blocks.of(message.sender)
        widest = blocks[-1].key
        keys = [key for block in blocks for key in self._block_keys(block.key, widest)]
        return QUOTA, keys, [action, *self._quota_args, *(block.factor for block in blocks)]

    def _block_keys(self, block: str, widest: str) -> tuple[str, str]:
        return self._keys.sent_by(block, widest), self._keys.rooms_made_by(block, widest)

    async def _run_store_scripts(self, calls: list[_StoreCall], verdicts: list[str]) -> list[Any]:
        runs = [(STORE, *self._script_arguments(call, verdict)) for call, verdict in zip(calls, verdicts, strict=True)]
        return await self._deployment.run_scripts(runs, wait_for_replicas=True)

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
                    settled.append(self._quota_run(message, "refund"))
                elif status == 0 and int(reply[2]):
                    settled.append(self._quota_run(message, "room"))
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
            quota_replies = await self._deployment.run_scripts(settled) if settled else []
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
        keys = [
            self._keys.stream(room),
            dedup_key,
            self._keys.deleted(room),
            self._keys.room_epoch(room),
            self._keys.pruned(room),
            self._keys.changes(room),
            self._keys.current(room),
        ]
        args: list[str | int] = [
            message.handle,
            message.message,
            message.timestamp,
            message.client_id or "",
            attempt,
            ttl,
            self._retain,
            self._trim_chunk,
            self._keys.channel(message.room),
            verdict,
            message.user or "",
            "1" if message.moderator else "",
            message.reply_to or "",
            message.author or "",
        ]
        return keys, args
