"""The in-process backend: the reference implementation of the contract.

Single process only, so there is no pub/sub: ``store`` hands the message straight to the hub, and
``delete_message`` its deletion; a moderation change is told on the loop's next turn.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Self

from backends.audit import DEFAULT_AUDIT_KEEP, AuditAction, AuditEntry
from backends.base import (
    AddressQuota,
    Backend,
    BackendOptions,
    Ban,
    HistoryPage,
    NewMessage,
    Replay,
    RoomSummary,
    StoredMessage,
    StoreResult,
    ban_term,
    ban_timestamp,
    check_ban,
)
from backends.changes import MAX_REACTION_KINDS, ChangeKind, MessageChange, Reactions, count_reactions
from backends.errors import MessageDeleted, MessageNotFound, NotAuthor, QuotaExceeded, ReplyToMissing, TooManyReactions
from backends.ids import parse_integer_id
from backends.quota import NewRoomQuota
from backends.search import SEARCH_SCAN_MESSAGES, SearchPage, SearchQuery

# History is kept as plain tuples of strings (and a bool), which the garbage collector stops tracking: as
# objects, a big history would be rescanned at every full collection, a pause of tens of milliseconds for all.
# Fields in StoredMessage's order: id, room, handle, message, timestamp, client id, user, moderator, reply
# to, author, edited, reactions.
_Row = tuple[str, str, str, str, str, str | None, str | None, bool, str | None, str | None, str | None, Reactions]
_TEXT: Final = 3  # a row's message, as it now stands
_CLIENT_ID: Final = 5  # a row's client id
_AUTHOR: Final = 9


def _messages(rows: list[_Row]) -> list[StoredMessage]:
    return list(map(StoredMessage._make, rows))


def _index(state: _Room, message_id: str) -> int | None:
    """Where the room holds the message ``message_id``, if it does."""
    key = parse_integer_id(message_id)
    index = bisect.bisect_left(state.ids, key)
    return index if index < len(state.ids) and state.ids[index] == key else None


@dataclass
class _Room:
    ids: list[int] = field(default_factory=list)
    rows: list[_Row] = field(default_factory=list)
    by_client_id: dict[str, _Row] = field(default_factory=dict)
    # The client ids of messages a moderator deleted, and the id each had: a resend is refused while the
    # message would still have been retained (pruning drops them as it drops ``by_client_id``'s).
    deleted_client_ids: dict[str, int] = field(default_factory=dict)
    pruned_through: int = 0
    total: int = 0  # messages stored and not deleted, pruned ones included (busiest rooms)
    last_active: str = ""  # the timestamp of the newest message ever stored, deleted or not
    # The room's log of changes, in its order, with their positions; and who reacted with what, per message.
    changes: list[MessageChange] = field(default_factory=list)
    change_ats: list[int] = field(default_factory=list)
    reactors: dict[int, dict[str, set[str]]] = field(default_factory=dict)


class MemoryBackend(Backend):
    kind = "memory"

    def __init__(
        self, retain_per_room: int = 10000, quota: AddressQuota | None = None, audit_keep: int = DEFAULT_AUDIT_KEEP
    ) -> None:
        super().__init__()
        self._retain = retain_per_room
        self._new_rooms = NewRoomQuota(quota)
        self._rooms: dict[str, _Room] = {}
        self._subscribed: set[str] = set()
        # Ids continue from the clock, so a client that saw an id of an earlier process (whose history
        # is gone) is recognised by an id at or below this one, and never mistakes new ids for old ones.
        self._first_id = time.time_ns() // 1000
        self._next_id = itertools.count(self._first_id + 1)
        self._last_id = self._first_id
        self._bans: dict[str, Ban] = {}  # in the order made: oldest first
        self._ban_ids = itertools.count(1)
        self._locked: set[str] = set()
        self._audit: collections.deque[AuditEntry] = collections.deque(maxlen=audit_keep)  # oldest first
        self._audit_ids = itertools.count(1)

    @classmethod
    def from_options(cls, options: BackendOptions) -> Self:
        return cls(retain_per_room=options.retain_per_room, quota=options.quota, audit_keep=options.audit_keep)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def health(self) -> None:
        pass

    def store_soon(self, message: NewMessage) -> asyncio.Future[StoreResult]:
        # Stored (and delivered) before this returns: the Future is only the answer.
        future: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
        try:
            future.set_result(self._store_now(message))
        except (QuotaExceeded, MessageDeleted, ReplyToMissing) as exc:
            future.set_exception(exc)
        return future

    def _store_now(self, message: NewMessage) -> StoreResult:
        room, client_id = message.room, message.client_id
        state = self._rooms.get(room)
        if client_id is not None and state is not None:
            if client_id in state.by_client_id:
                return StoreResult(StoredMessage._make(state.by_client_id[client_id]), duplicate=True)
            if client_id in state.deleted_client_ids:
                raise MessageDeleted("a moderator deleted the message with this client_id; it is not stored again")
        if message.reply_to is not None and (state is None or _index(state, message.reply_to) is None):
            raise ReplyToMissing(f"this room holds no message {message.reply_to}")
        if state is None:  # not setdefault: that would build a _Room for every message
            self._new_rooms.charge(message.sender)
            state = self._rooms[room] = _Room()
        self._last_id = next(self._next_id)
        row: _Row = (
            str(self._last_id),
            room,
            message.handle,
            message.message,
            message.timestamp,
            client_id,
            message.user,
            message.moderator,
            message.reply_to,
            message.author,
            None,
            (),
        )
        stored = StoredMessage._make(row)
        state.ids.append(self._last_id)
        state.rows.append(row)
        state.total += 1
        state.last_active = message.timestamp
        if client_id is not None:
            state.by_client_id[client_id] = row
        self._prune(state)
        if room in self._subscribed and self._target is not None:
            self._target.deliver(stored)
        return StoreResult(stored)

    def _prune(self, state: _Room) -> None:
        excess = len(state.rows) - self._retain
        # Prune in chunks so a busy room does not shift its list on every message.
        if self._retain <= 0 or excess < max(1, self._retain // 10):
            return
        for old in state.rows[:excess]:
            if old[_CLIENT_ID] is not None:
                state.by_client_id.pop(old[_CLIENT_ID], None)
        state.pruned_through = state.ids[excess - 1]
        del state.rows[:excess]
        del state.ids[:excess]
        for message_id in [key for key in state.reactors if key <= state.pruned_through]:
            del state.reactors[message_id]
        # A change goes with its message: a client that held the message hears of the gap instead.
        kept = [change for change in state.changes if int(change.id) > state.pruned_through]
        if len(kept) < len(state.changes):
            state.changes = kept
            state.change_ats = [int(change.at) for change in kept]
        if state.deleted_client_ids:
            state.deleted_client_ids = {
                client_id: message_id
                for client_id, message_id in state.deleted_client_ids.items()
                if message_id > state.pruned_through
            }

    async def history(self, room: str, limit: int, before: str | None = None, after: str | None = None) -> HistoryPage:
        return self._history(self._rooms.get(room) or _Room(), limit, before, after)

    def _history(self, state: _Room, limit: int, before: str | None, after: str | None) -> HistoryPage:
        if after is not None:
            start = bisect.bisect_right(state.ids, parse_integer_id(after))
            return HistoryPage(_messages(state.rows[start : start + limit]), start + limit < len(state.ids))
        end = len(state.ids) if before is None else bisect.bisect_left(state.ids, parse_integer_id(before))
        start = max(0, end - limit)
        return HistoryPage(_messages(state.rows[start:end]), start > 0)

    async def search(self, room: str, query: SearchQuery, limit: int, before: str | None = None) -> SearchPage:
        state = self._rooms.get(room) or _Room()
        end = len(state.ids) if before is None else bisect.bisect_left(state.ids, parse_integer_id(before))
        start = max(0, end - SEARCH_SCAN_MESSAGES)
        found: list[StoredMessage] = []
        if query.is_empty:
            return SearchPage(found, False)
        for index in range(end - 1, start - 1, -1):
            row = state.rows[index]
            if query.matches(row[_TEXT]):
                if len(found) == limit:
                    return SearchPage(found, True)
                found.append(StoredMessage._make(row))
        return SearchPage(found, start > 0)  # older messages were left unread: there may be more

    async def replay(self, room: str, since: str, limit: int, origin: str | None = None) -> Replay:
        since_id = parse_integer_id(since)
        state = self._rooms.get(room) or _Room()
        if since_id > self._last_id or 0 < since_id <= self._first_id:
            # The client saw ids this process never issued: the store was reset under it.
            return Replay(gap=True, after="0", page=self._history(state, limit, None, "0"))
        page = self._history(state, limit, None, since)
        changes: tuple[MessageChange, ...] = ()
        if origin is not None:
            origin_id = parse_integer_id(origin)
            end = int(page.messages[-1].id) if page.has_more else self._last_id
            first = bisect.bisect_right(state.change_ats, since_id)
            last = bisect.bisect_right(state.change_ats, end)
            changes = tuple(change for change in state.changes[first:last] if int(change.id) <= origin_id)
        return Replay(gap=since_id < state.pruned_through, after=since, page=page, changes=changes)

    async def subscribe(self, room: str) -> str:
        self._subscribed.add(room)
        return str(self._last_id)  # stores deliver as they store: all up to here is delivered already

    async def unsubscribe(self, room: str) -> None:
        self._subscribed.discard(room)

    async def busiest_rooms(self, limit: int) -> list[RoomSummary]:
        active = [(label, state) for label, state in self._rooms.items() if state.total]
        active.sort(key=lambda item: (-item[1].total, item[0]))
        return [RoomSummary(label, state.total, state.last_active) for label, state in active[:limit]]

    async def expire_rooms(self, idle_since: str) -> int:
        idle = [label for label, state in self._rooms.items() if state.last_active < idle_since]
        for label in idle:
            del self._rooms[label]
        return len(idle)

    def id_key(self, message_id: str) -> tuple[int, ...]:
        return (parse_integer_id(message_id),)

    # -- moderation -------------------------------------------------------------------------------

    async def delete_message(self, room: str, message_id: str, authors: frozenset[str] | None = None) -> bool:
        key = parse_integer_id(message_id)
        state = self._rooms.get(room)
        index = None if state is None else _index(state, message_id)
        if state is None or index is None:
            return False
        if authors is not None and state.rows[index][_AUTHOR] not in authors:
            raise NotAuthor("only its author may delete this message")
        row = state.rows.pop(index)
        del state.ids[index]
        state.total -= 1
        client_id = row[_CLIENT_ID]
        if client_id is not None:
            del state.by_client_id[client_id]
            state.deleted_client_ids[client_id] = key
        state.reactors.pop(key, None)
        # Its earlier changes are moot now: a replay tells only that it is gone, never its text again.
        if any(change.id == message_id for change in state.changes):
            state.changes = [change for change in state.changes if change.id != message_id]
            state.change_ats = [int(change.at) for change in state.changes]
        # Delivered as it is deleted, as messages are as they are stored: after the message itself.
        self._log(state, MessageChange(room, message_id, "", ChangeKind.DELETE))
        return True

    async def edit_message(
        self, room: str, message_id: str, text: str, edited: str, authors: frozenset[str]
    ) -> MessageChange:
        state, index = self._found(room, message_id)
        row = state.rows[index]
        if row[_AUTHOR] is None or row[_AUTHOR] not in authors:
            raise NotAuthor("only its author may edit this message")
        self._replace(state, index, (*row[:3], text, *row[4:10], edited, row[11]))
        return self._log(state, MessageChange(room, message_id, "", ChangeKind.EDIT, message=text, edited=edited))

    async def react(self, room: str, message_id: str, reactor: str, emoji: str, on: bool) -> MessageChange | None:
        state, index = self._found(room, message_id)
        reactors = state.reactors.setdefault(int(message_id), {})
        who = reactors.get(emoji)
        if on:
            if who is None and sum(1 for users in reactors.values() if users) >= MAX_REACTION_KINDS:
                raise TooManyReactions(f"a message has at most {MAX_REACTION_KINDS} different reactions")
            if who is not None and reactor in who:
                return None
            reactors.setdefault(emoji, set()).add(reactor)
        else:
            if who is None or reactor not in who:
                return None
            who.discard(reactor)
            if not who:
                del reactors[emoji]
        counts = count_reactions(reactors)
        row = state.rows[index]
        self._replace(state, index, (*row[:11], counts))
        return self._log(state, MessageChange(room, message_id, "", ChangeKind.REACTIONS, reactions=counts))

    async def message(self, room: str, message_id: str) -> StoredMessage | None:
        parse_integer_id(message_id)
        state = self._rooms.get(room)
        index = None if state is None else _index(state, message_id)
        return None if state is None or index is None else StoredMessage._make(state.rows[index])

    def _found(self, room: str, message_id: str) -> tuple[_Room, int]:
        parse_integer_id(message_id)
        state = self._rooms.get(room)
        index = None if state is None else _index(state, message_id)
        if state is None or index is None:
            raise MessageNotFound(f"this room holds no message {message_id}")
        return state, index

    def _replace(self, state: _Room, index: int, row: _Row) -> None:
        state.rows[index] = row
        if row[_CLIENT_ID] is not None:
            state.by_client_id[row[_CLIENT_ID]] = row

    def _log(self, state: _Room, change: MessageChange) -> MessageChange:
        """Give ``change`` the room's next position, keep it in the room's log and deliver it."""
        self._last_id = next(self._next_id)
        change = change._replace(at=str(self._last_id))
        state.changes.append(change)
        state.change_ats.append(self._last_id)
        if change.room in self._subscribed and self._target is not None:
            self._target.changed(change)
        return change

    async def add_ban(
        self, handle: str | None, address: str | None, room: str | None, seconds: float | None, reason: str
    ) -> Ban:
        check_ban(handle, address, seconds)
        self._drop_expired_bans()
        created, expires = ban_term(seconds)
        ban = Ban(str(next(self._ban_ids)), handle, address, room, reason, created, expires)
        self._bans[ban.id] = ban
        self._moderation_changed()
        return ban

    async def bans(self) -> list[Ban]:
        self._drop_expired_bans()
        return list(self._bans.values())

    async def lift_ban(self, ban_id: str) -> bool:
        self._drop_expired_bans()
        if self._bans.pop(ban_id, None) is None:
            return False
        self._moderation_changed()
        return True

    async def set_locked(self, room: str, locked: bool) -> None:
        if locked == (room in self._locked):
            return
        if locked:
            self._locked.add(room)
        else:
            self._locked.discard(room)
        self._moderation_changed()

    async def locked_rooms(self) -> frozenset[str]:
        return frozenset(self._locked)

    async def record_audit(self, action: AuditAction) -> AuditEntry:
        entry = AuditEntry.of(next(self._audit_ids), ban_timestamp(datetime.now(UTC)), action)
        self._audit.append(entry)  # the deque drops the oldest past its bound
        return entry

    async def audit_page(self, limit: int, before: int | None = None) -> list[AuditEntry]:
        newest_first = reversed(self._audit)
        if before is not None:
            newest_first = (entry for entry in newest_first if entry.id < before)
        return list(itertools.islice(newest_first, limit))

    def _drop_expired_bans(self) -> None:
        now = ban_timestamp(datetime.now(UTC))
        expired = [ban.id for ban in self._bans.values() if ban.expires is not None and ban.expires <= now]
        for ban_id in expired:
            del self._bans[ban_id]

    def _moderation_changed(self) -> None:
        # On the loop's next turn, as a store's pub/sub notice would come: never inside the caller's call.
        if self._target is not None:
            asyncio.get_running_loop().call_soon(self._target.moderation_changed)
