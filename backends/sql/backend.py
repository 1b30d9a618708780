"""The SQL backend: SQLite (the default), PostgreSQL and MySQL/MariaDB through peewee.

peewee and its drivers block, so no query runs on the event loop. Worker threads each hold their own
connection (peewee keeps one per thread):

* **One writer thread** owns every write. It takes all the stores waiting at that moment, inserts them
  in one transaction and commits (group commit: one fsync for the lot), and only then hands the batch
  back to the loop, which delivers the messages in commit order and answers each sender. An acknowledged
  message is a committed message, and one writer means SQLite never waits on its own file lock. Changes
  to messages (edits, reactions, deletions) join the same turn in their place among the stores.
* **Reader threads** serve history, replays, busiest rooms and health beside the writer, never behind it.
* **A pruner thread** deletes what retention no longer keeps, in short transactions of its own, so no
  sender waits for a prune. Moderators' writes (a ban, a lock) and the reads of bans, which drop the
  expired ones, run there too: rare, and never in a sender's way. Changes to messages run on the writer
  thread instead, after the stores queued before them, so they take positions in the room's order.

A query that fails drops its connection and raises ``BackendUnavailable``; the next query connects
again, so the backend mends itself once the database is back (``threads.py``).

This module runs the threads; the queries they run are synchronous, each kind in a module of its own:
``writer.py`` (stores), ``history.py`` (reads), ``search.py`` (searches), ``changes.py`` (edits, reactions,
deletions), ``retention.py`` (prunes and expiry), ``moderation.py`` (bans, locks) and ``audit.py`` (the audit
log).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
from collections.abc import Callable
from typing import NamedTuple, Self, TypeVar

from backends.base import (
    BackendOptions,
    HistoryPage,
    NewMessage,
    Replay,
    RoomSummary,
    StoredMessage,
    StoreResult,
    utc_timestamp,
)
from backends.changes import MessageChange
from backends.errors import BackendRefused, BackendUnavailable, MessageNotFound
from backends.ids import parse_integer_id
from backends.search import SearchPage, SearchQuery
from backends.sql.audit import AuditLog
from backends.sql.changes import ChangeStore
from backends.sql.database import RoomsDatabase, open_database
from backends.sql.history import HistoryReader
from backends.sql.migrations import prepare_schema
from backends.sql.moderated import SQLModeration
from backends.sql.moderation import ModerationStore
from backends.sql.options import SQLOptions, read_options
from backends.sql.refusals import first_line, refusal_reason
from backends.sql.retention import Retention
from backends.sql.search import SearchReader
from backends.sql.settling import settle, settle_exception
from backends.sql.tables import build_schema
from backends.sql.threads import STOP, Job, Workers
from backends.sql.writer import Change, ChangeOutcome, MessageWriter, StoreOutcome

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH = 500  # a batch may pass it by what one loop iteration queued
READER_THREADS = 2
MAX_ID = 2**63 - 1  # ids are BIGINT; a larger one from a client lies past every message

_Pending = tuple[NewMessage, asyncio.Future[StoreResult]]


class _ChangeJob(NamedTuple):
    """A change to a message as the writer is handed it, and the Future its answer settles."""

    operation: str
    change: Change
    future: asyncio.Future[MessageChange | None]


# A part of the writer's turn: stores, or a change.
_Part = list[_Pending] | _ChangeJob


class SQLBackend(SQLModeration):
    def __init__(self, options: SQLOptions) -> None:
        super().__init__()
        self.kind = options.kind
        database = open_database(options.url, options.synchronous)
        self._database = RoomsDatabase(database, build_schema(database), self.kind)
        self._writer = MessageWriter(self._database, options.retain_per_room, options.quota)
        self._history = HistoryReader(self._database)
        self._search = SearchReader(self._database)
        self._retention = Retention(self._database, options.retain_per_room)
        self._moderation = ModerationStore(self._database)
        self._changes = ChangeStore(self._database)
        self._audit = AuditLog(self._database, options.audit_keep)
        self._workers = Workers(self._database, self.kind)
        self._loop: asyncio.AbstractEventLoop | None = None
        # The loop hands the writer what one loop iteration queued as one list (one wake-up for the
        # writer thread, which then competes once for the GIL, rather than once per message).
        self._writes: queue.SimpleQueue[_Part | object] = queue.SimpleQueue()
        self._outbox: list[_Pending] = []
        self._reads: queue.SimpleQueue[Job | object] = queue.SimpleQueue()
        self._prunes: queue.SimpleQueue[Job | object] = queue.SimpleQueue()
        self._writer_done: asyncio.Future[None] | None = None
        self._closed = False
        self._subscribed: set[str] = set()
        # The greatest id the loop has delivered (or, for rooms nobody here listens to, passed over).
        self._finished_through = 0

    @classmethod
    def from_options(cls, options: BackendOptions) -> Self:
        return cls(read_options(options))

    @classmethod
    def check_options(cls, options: BackendOptions) -> None:
        read_options(options)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = self._workers.loop = asyncio.get_running_loop()
        for number in range(READER_THREADS):
            self._workers.spawn(f"rooms-sql-read-{number}", self._workers.serve, self._reads)
        try:
            await self._read("schema setup", self._prepare)
        except BackendUnavailable as exc:
            reason = refusal_reason(self.kind, self._database.db, exc.__cause__)
            if reason is None:
                raise
            raise BackendRefused(reason) from exc
        # What was stored before this process started is never delivered here: delivery starts past it, so
        # a socket resuming from it is not held waiting for a delivery that cannot come (see ``subscribe``).
        self._finished_through = await self._read("newest id read", self._history.newest_id)
        self._writer_done = self._loop.create_future()
        self._workers.spawn("rooms-sql-prune", self._workers.serve, self._prunes)
        self._workers.spawn("rooms-sql-write", self._write_loop)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer_done is not None:
            self._hand_over()
            self._writes.put(STOP)
            await self._writer_done  # every store queued before close is committed (or failed) and answered
            self._prunes.put(STOP)
        for _ in range(READER_THREADS):
            self._reads.put(STOP)
        await self._workers.join()

    def _prepare(self) -> None:
        prepare_schema(self._database.db, self._database.tables)
        self._writer.prepare()
        self._search.prepare()

    # -- the contract -----------------------------------------------------------------------------

    async def health(self) -> None:
        await self._read("health check", self._database.ping)

    def store_soon(self, message: NewMessage) -> asyncio.Future[StoreResult]:
        # The writer's own Future, settled in queue order: no Task per message.
        future: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
        if self._closed or self._writer_done is None:
            future.set_exception(BackendUnavailable(f"the {self.kind} backend is not running"))
            return future
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._hand_over)
        self._outbox.append((message, future))
        return future

    async def history(self, room: str, limit: int, before: str | None = None, after: str | None = None) -> HistoryPage:
        before_id = None if before is None else min(parse_integer_id(before), MAX_ID)
        after_id = None if after is None else parse_integer_id(after)
        if after_id is not None and after_id >= MAX_ID:
            return HistoryPage([], False)
        return await self._read("history read", lambda: self._history.history(room, limit, before_id, after_id))

    async def search(self, room: str, query: SearchQuery, limit: int, before: str | None = None) -> SearchPage:
        before_id = None if before is None else min(parse_integer_id(before), MAX_ID)
        return await self._read("search", lambda: self._search.search(room, query, limit, before_id))

    async def replay(self, room: str, since: str, limit: int, origin: str | None = None) -> Replay:
        since_id = min(parse_integer_id(since), MAX_ID)
        origin_id = None if origin is None else min(parse_integer_id(origin), MAX_ID)
        return await self._read("replay read", lambda: self._history.replay(room, since_id, limit, origin_id))

    async def subscribe(self, room: str) -> str:
        self._subscribed.add(room)
        # Ids increase in commit order across rooms, and batches are finished on the loop in that order.
        return str(self._finished_through)

    async def unsubscribe(self, room: str) -> None:
        self._subscribed.discard(room)

    async def busiest_rooms(self, limit: int) -> list[RoomSummary]:
        return await self._read("busiest rooms read", lambda: self._history.busiest(limit))

    async def expire_rooms(self, idle_since: str) -> int:
        # On the pruner's thread: like a prune, it deletes in transactions of its own, beside the writer.
        return await self._run_on(self._prunes, "expiry", lambda: self._retention.expire_rooms(idle_since), False)

    def id_key(self, message_id: str) -> tuple[int, ...]:
        return (parse_integer_id(message_id),)

    # -- moderation -------------------------------------------------------------------------------

    async def delete_message(self, room: str, message_id: str, authors: frozenset[str] | None = None) -> bool:
        key = parse_integer_id(message_id)
        if not 0 < key <= MAX_ID:
            return False
        change = await self._change("deletion", lambda: self._changes.delete(room, key, authors, utc_timestamp()))
        return change is not None

    async def edit_message(
        self, room: str, message_id: str, text: str, edited: str, authors: frozenset[str]
    ) -> MessageChange:
        key = self._change_key(message_id)
        change = await self._change("edit", lambda: self._changes.edit(room, key, text, edited, authors))
        assert change is not None  # an edit always changes
        return change

    async def react(self, room: str, message_id: str, reactor: str, emoji: str, on: bool) -> MessageChange | None:
        key = self._change_key(message_id)
        return await self._change(
            "reaction", lambda: self._changes.react(room, key, reactor, emoji, on, utc_timestamp())
        )

    async def message(self, room: str, message_id: str) -> StoredMessage | None:
        key = parse_integer_id(message_id)
        return None if key > MAX_ID else await self._read("message read", lambda: self._changes.message(room, key))

    def _change_key(self, message_id: str) -> int:
        key = parse_integer_id(message_id)
        if key > MAX_ID:
            raise MessageNotFound(f"this room holds no message {message_id}")
        return key

    async def _change(self, operation: str, query: Change) -> MessageChange | None:
        """Make a change on the writer thread, in its turn after the stores queued before it; deliver it in
        that order, and answer it, once the turn is committed."""
        if self._closed or self._loop is None or self._writer_done is None:
            raise BackendUnavailable(f"the {self.kind} backend is not running")
        future: asyncio.Future[MessageChange | None] = self._loop.create_future()
        self._hand_over()  # the stores queued before it go first
        self._writes.put(_ChangeJob(operation, query, future))
        return await future

    def _finish_change(self, future: asyncio.Future[MessageChange | None], change: MessageChange | None) -> None:
        if change is not None:
            self._finished_through = max(self._finished_through, int(change.at))
            if self._target is not None and change.room in self._subscribed:
                self._target.changed(change)
        settle(future, change)

    async def _moderate(self, operation: str, query: Callable[[], T]) -> T:
        # On the pruner's thread: a write in a transaction of its own, beside the writer.
        return await self._run_on(self._prunes, operation, query, idempotent=False)

    # -- loop side ----------------------------------------------------------------------------------

    async def _read(self, operation: str, query: Callable[[], T]) -> T:
        """Run ``query`` on a reader thread; database errors come back as ``BackendUnavailable``."""
        return await self._run_on(self._reads, operation, query, idempotent=True)

    async def _run_on(
        self, jobs: queue.SimpleQueue[Job | object], operation: str, query: Callable[[], T], idempotent: bool
    ) -> T:
        if self._closed:
            raise BackendUnavailable(f"the {self.kind} backend is not running")
        return await self._workers.run_on(jobs, operation, query, idempotent)

    def _hand_over(self) -> None:
        if self._outbox:
            self._writes.put(self._outbox)
            self._outbox = []

    def _finish_batch(self, batch: list[_Pending], results: list[StoreOutcome]) -> None:
        """On the loop, in commit order: deliver each new message, then answer its sender."""
        target = self._target
        for (request, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):  # refused (a quota, a deleted client id, a reply to nothing)
                settle_exception(future, result)
                continue
            if not result.duplicate:
                self._finished_through = int(result.message.id)
                if target is not None and request.room in self._subscribed:
                    target.deliver(result.message)
            settle(future, result)

    def _finish_turn(self, turn: list[_Part], outcomes: list[list[StoreOutcome] | ChangeOutcome]) -> None:
        """On the loop, in commit order: each batch's messages and each change delivered and answered."""
        for part, outcome in zip(turn, outcomes, strict=True):
            if isinstance(part, list):
                assert isinstance(outcome, list)
                self._finish_batch(part, outcome)
            elif isinstance(outcome, Exception):  # refused: no such message, not its author, too many kinds
                settle_exception(part.future, outcome)
            else:
                assert not isinstance(outcome, list)
                self._finish_change(part.future, outcome)

    def _fail_turn(self, turn: list[_Part], failure: BackendUnavailable) -> None:
        """Nothing of the turn was committed: every store and change in it fails as it would alone."""
        cause = failure.__cause__
        for part in turn:
            if isinstance(part, list):
                for _, future in part:
                    settle_exception(future, BackendUnavailable(str(failure)))
            else:
                reason = f"{self.kind} {part.operation} failed" + (f": {first_line(cause)}" if cause else "")
                settle_exception(part.future, BackendUnavailable(reason))

    # -- worker threads -------------------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            stopping = False
            while not stopping:
                # A turn: what was handed over meanwhile, in order, stores that follow one another as one batch.
                turn: list[_Part] = []
                size = 0
                handed = self._writes.get()
                while True:
                    if isinstance(handed, _ChangeJob):
                        turn.append(handed)
                        size += 1
                    elif isinstance(handed, list):
                        last = turn[-1] if turn else None
                        if isinstance(last, list):
                            last.extend(handed)
                        else:
                            turn.append(handed)
                        size += len(handed)
                    else:  # STOP: close() queues nothing after it
                        stopping = True
                        break
                    if size >= MAX_BATCH:
                        break
                    try:
                        handed = self._writes.get_nowait()
                    except queue.Empty:
                        break
                if turn:
                    self._commit(turn)
        finally:
            self._database.drop_connection()
            if self._writer_done is not None:
                self._workers.call_on_loop(settle, self._writer_done, None)

    def _commit(self, turn: list[_Part]) -> None:
        parts = [[request for request, _ in part] if isinstance(part, list) else part.change for part in turn]
        size = sum(len(part) if isinstance(part, list) else 1 for part in turn)
        try:
            outcomes = self._workers.guarded("write", lambda: self._writer.write_turn(parts))
        except BackendUnavailable as exc:
            log.warning("a batch of %d writes failed: %s", size, exc)
            self._workers.call_on_loop(self._fail_turn, turn, exc)
            return
        except Exception:
            log.exception("a batch of %d writes failed unexpectedly", size)
            self._workers.call_on_loop(self._fail_turn, turn, BackendUnavailable(f"{self.kind} write failed"))
            return
        self._workers.call_on_loop(self._finish_turn, turn, outcomes)
        stored = [result for outcome in outcomes if isinstance(outcome, list) for result in outcome]
        for room_id in self._writer.rooms_due_for_pruning(stored):
            self._prunes.put(functools.partial(self._prune, room_id))

    def _prune(self, room_id: int) -> None:
        try:
            self._workers.guarded("prune", lambda: self._retention.prune_room(room_id))
        except BackendUnavailable as exc:
            log.warning("pruning room id %d failed: %s", room_id, exc)
