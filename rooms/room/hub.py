"""The room layer: the one door between the handlers and the backend.

Every way in (socket, HTTP POST) posts through here under the same rate policy, every read (the room
page, the API, a search, a socket's replay from ``since``) goes through here, and every stored message
comes back out through the local fan-out to this process's sockets. No handler touches the backend.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial

from backends.audit import AuditEntry
from backends.base import Backend, Ban, HistoryPage, NewMessage, RoomSummary, StoredMessage, StoreResult
from backends.errors import BackendUnavailable, InvalidMessageId
from backends.search import SearchPage, SearchQuery
from rooms.access.identity import ANONYMOUS, Identity
from rooms.access.room_patterns import NO_ROOM, RoomPatterns
from rooms.errors import Forbidden, RateLimited, ShuttingDown
from rooms.protocol import ErrorCode, Feature, ProtocolError
from rooms.room.audit import read_page
from rooms.room.changes import MessageChanges, no_such_message
from rooms.room.delivery import RoomDelivery
from rooms.room.expiry import RoomExpiry
from rooms.room.fanout import LocalFanout
from rooms.room.member import Member
from rooms.room.metrics import RoomsMetrics
from rooms.room.moderation import Closable, RoomModeration
from rooms.room.notices import ChangeNotices
from rooms.room.presence import LocalPresence
from rooms.room.rates import RatePolicy, Sender
from rooms.room.replay import Replays
from rooms.room.typing import TypingRelay

BUSIEST_ROOMS_SHOWN = 10
# With private rooms, the busiest ones are read this many times over, so that the public ones among
# them still fill the list unless nearly all the busy rooms are private.
BUSIEST_ROOMS_READ_FACTOR = 10


class RoomHub:
    def __init__(
        self,
        backend: Backend,
        metrics: RoomsMetrics,
        rates: RatePolicy,
        page_size: int,
        expire_after_days: float = 0,
        unlisted: RoomPatterns = NO_ROOM,
    ) -> None:
        self._backend = backend
        self._unlisted = unlisted
        self._expiry = RoomExpiry(backend, metrics, expire_after_days)
        # The hub's parts: the web layer and the sessions call the hub's methods, never these.
        self.metrics = metrics
        self.rates = rates
        self.page_size = page_size
        self.fanout = LocalFanout(backend, metrics)
        self.presence = LocalPresence(backend, metrics)
        self.typing_relay = TypingRelay(backend, metrics)
        self.notices = ChangeNotices(self.fanout)
        self.moderation = RoomModeration(backend)
        self.changes = MessageChanges(backend, self.refusal)
        self._replays = Replays(backend, self.fanout)
        backend.set_delivery_target(
            RoomDelivery(self.fanout, self.presence, self.typing_relay, self.notices, self.moderation.changed)
        )
        self._in_flight = 0
        # Why the last store failed, while none has succeeded since: the store answers, yet takes no writes
        # (a full disk, a read-only replica), which /healthz must tell.
        self._store_failure: BackendUnavailable | None = None
        self._accepting = True
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def backend_kind(self) -> str:
        return self._backend.kind

    async def load_moderation(self) -> None:
        """Read the bans and room locks in force (at start, before serving)."""
        await self.moderation.load()

    # -- reads ----------------------------------------------------------------------------------

    def id_key(self, message_id: str) -> tuple[int, ...]:
        """A sortable key for a message id; ``InvalidMessageId`` unless it is of the form this store issues."""
        return self._backend.id_key(message_id)

    async def page(self, room: str) -> HistoryPage:
        """The room page's history: the newest ``history.page_size`` messages."""
        return await self._backend.history(room, self.page_size)

    async def history(self, room: str, limit: int, before: str | None, after: str | None) -> HistoryPage:
        for message_id in (before, after):
            if message_id is not None:
                self.id_key(message_id)
        return await self._backend.history(room, limit, before=before, after=after)

    async def search(self, room: str, text: str, limit: int, before: str | None, address: str) -> SearchPage:
        """The room's messages holding every word of ``text`` (``SearchQuery.parse``), newest first;
        ``InvalidMessageId`` for a bad ``before``, then ``RateLimited`` past the address's searches."""
        if before is not None:
            self.id_key(before)
        if not self.rates.take_search(address):
            raise RateLimited("too many searches from this address; wait a little")
        return await self._backend.search(room, SearchQuery.parse(text), limit, before)

    async def busiest_rooms(self) -> list[RoomSummary]:
        """The busiest rooms anyone may see listed: never a private one (``unlisted``)."""
        if not self._unlisted:
            return await self._backend.busiest_rooms(BUSIEST_ROOMS_SHOWN)
        busiest = await self._backend.busiest_rooms(BUSIEST_ROOMS_SHOWN * BUSIEST_ROOMS_READ_FACTOR)
        return [room for room in busiest if not self._unlisted.matches(room.label)][:BUSIEST_ROOMS_SHOWN]

    async def health(self) -> None:
        """Raise ``BackendUnavailable`` with the reason unless the store answers now and takes writes (a
        store that failed, with none succeeding since, says it takes none)."""
        try:
            await self._backend.health()
            if self._store_failure is not None:
                raise BackendUnavailable(f"it takes no writes: the last store failed: {self._store_failure}")
        except BackendUnavailable:
            self.metrics.backend_up.set(0)
            raise
        self.metrics.backend_up.set(1)

    # -- the way in -----------------------------------------------------------------------------

    def post_soon(
        self, message: NewMessage, sender: Sender, identity: Identity = ANONYMOUS
    ) -> asyncio.Future[StoreResult]:
        """Store a message as ``identity`` sends it (under a token's name, whatever the client gave);
        the backend then delivers it to every process's sockets of its room.

        ``RateLimited`` is raised at once when one of the sender's buckets is empty, ``Forbidden`` when a
        ban or a locked room stands in the way (never for a moderator of the room); the store may still
        refuse it with ``QuotaExceeded`` (new rooms, and the address's rate across processes). The answer
        comes as a Future, and posts keep the order they were made in, so a socket need not wait for one
        before reading the next.
        """
        if not sender.take():
            raise RateLimited("too many messages; this one was not sent, slow down")
        if not self._accepting:
            refused: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
            refused.set_exception(ShuttingDown("the server is shutting down; this message was not sent"))
            return refused
        if message.reply_to is not None:
            try:
                self.id_key(message.reply_to)
            except InvalidMessageId:
                raise ProtocolError(
                    ErrorCode.INVALID_MESSAGE, f"field 'reply_to': no message {message.reply_to!r}"
                ) from None
        authored = identity.author(message)
        refusal = self.refusal(identity, authored.room, authored.handle, sender.address)
        if refusal is not None:
            raise Forbidden(f"{refusal}; this message was not sent")
        self._in_flight += 1
        self._idle.clear()
        store = self._backend.store_soon(authored)
        store.add_done_callback(partial(self._stored, time.perf_counter()))
        return store

    async def post(self, message: NewMessage, sender: Sender, identity: Identity = ANONYMOUS) -> StoreResult:
        return await self.post_soon(message, sender, identity)

    def socket_sender(self, address: str) -> Sender:
        """A socket's sender: a bucket of its own and its address's (and its blocks')."""
        return self.rates.for_connection(address)

    def forget_departed(self) -> None:
        """Let go of the state kept for addresses that have gone (``RatePolicy.forget_idle``)."""
        self.rates.forget_idle()

    def request_sender(self, address: str) -> Sender:
        """An HTTP request's sender: its address's buckets, which the address's sockets share."""
        return self.rates.for_request(address)

    def refusal(self, identity: Identity, room: str, handle: str, address: str) -> str | None:
        """Why ``identity`` may not post (or type) in ``room`` under ``handle`` from ``address`` (a
        ``limit_key``): a ban or a locked room; None if it may, as a moderator always may."""
        return None if identity.moderator else self.moderation.refusal(room, handle, address)

    def _stored(self, started: float, store: asyncio.Future[StoreResult]) -> None:
        self.metrics.store_seconds.observe(time.perf_counter() - started)
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()
        if store.cancelled():
            return
        failure = store.exception()
        if failure is not None:
            if isinstance(failure, BackendUnavailable):
                self._store_failure = failure
            return
        self._store_failure = None
        if store.result().duplicate:
            self.metrics.messages_deduplicated.inc()
        else:
            self.metrics.messages_stored.inc()

    # -- changes by a message's author (``rooms.room.changes`` says what each checks) ------------------

    async def edit(
        self, room: str, message_id: str, text: str, key: str | None, identity: Identity, address: str
    ) -> StoredMessage:
        return await self.changes.edit(room, message_id, text, key, identity, address)

    async def delete_own(self, room: str, message_id: str, key: str | None, identity: Identity, address: str) -> None:
        """Its author deletes a message; a moderator of the room (a socket's token) any message, as the API's."""
        if identity.moderator:
            if not await self.delete_message(room, message_id, identity):
                raise no_such_message(message_id)
            return
        await self.changes.delete(room, message_id, key, identity, address)

    async def react(
        self, room: str, message_id: str, emoji: str, on: bool, reactor: str | None, identity: Identity, sender: Sender
    ) -> None:
        await self.changes.react(room, message_id, emoji, on, reactor, identity, sender)

    # -- sockets --------------------------------------------------------------------------------

    async def join(self, member: Member, room: str, features: frozenset[Feature] = frozenset()) -> None:
        """Hold a socket in its room before its handshake is answered: once this returns it misses
        nothing; ``go_live`` then lets it hear. It counts in the room's presence from here on, and gets the
        presence and typing frames of the ``features`` it asked for."""
        await self.fanout.join(member, room)
        self.presence.join(member, room, features)
        self.typing_relay.join(member, room, features)
        self.notices.join(member, room, features)

    async def go_live(
        self, member: Member, room: str, since: str | None, features: frozenset[Feature] = frozenset()
    ) -> None:
        """With ``since``, first replay what the socket missed (and the changes its ``features`` ask for);
        then send it what was held back since ``join`` (no gap, no duplicate) and deliver to it live."""
        replayed = None
        try:
            if since is not None:
                replayed = await self._replays.send(member, room, since, features)
        except BaseException:
            self.leave(member, room)
            raise
        self.fanout.go_live(member, room, replayed)

    def leave(self, member: Member, room: str) -> None:
        """Out of the room and its presence; safe to repeat."""
        self.fanout.leave(member, room)
        self.presence.leave(member, room)
        self.typing_relay.leave(member, room)

    def leave_too_slow(self, member: Member, room: str) -> None:
        """``leave``, for a socket that fell too far behind (it closes with 1013)."""
        self.metrics.slow_clients_closed.inc()
        self.leave(member, room)

    def is_held(self, member: Member, room: str) -> bool:
        """Whether a socket is in its room and not live yet (joined, or replaying)."""
        return self.fanout.is_held(member, room)

    def open_connection(self, address: str) -> bool:
        """Count a socket of ``address`` among its address's open ones; False (nothing counted, the
        refusal counted in the metrics) when the address, or one of its blocks, holds its limit."""
        if self.rates.open_connection(address):
            return True
        self.metrics.connections_refused.inc()
        return False

    def close_connection(self, address: str) -> None:
        self.rates.close_connection(address)

    def socket_opened(self) -> None:
        self.metrics.connections.inc()

    def socket_closed(self) -> None:
        self.metrics.connections.dec()

    def address_banned(self, room: str, address: str) -> bool:
        """Whether a ban of ``address`` (a ``limit_key``) holds in ``room``: its sockets are refused."""
        return self.moderation.address_ban(room, address) is not None

    def watch_for_bans(self, socket: Closable, room: str, address: str) -> bool:
        """Close ``socket`` once its address (a ``limit_key``) is banned from ``room``; False (nothing
        watched) when it is banned already."""
        return self.moderation.watch(socket, room, address)

    def stop_watching(self, socket: Closable, address: str) -> None:
        """Safe to repeat."""
        self.moderation.unwatch(socket, address)

    def before_message(self, member: Member, room: str) -> None:
        """``member`` is posting a message: its typing frame, if held for a batch, goes out first."""
        self.typing_relay.before_message(member, room)

    def client_error(self, code: ErrorCode) -> None:
        """Count an error told to a client (in a reply, or as the reason its socket is closed)."""
        self.metrics.client_errors.labels(code).inc()

    def announce(self, member: Member, room: str, handle: str) -> None:
        """A socket's ``hello``: the handle it goes by in the room's presence."""
        self.presence.announce(member, room, handle)

    def typing(self, member: Member, room: str, handle: str) -> None:
        # Not for a room this process has let go of (its last socket left, and its presence was told).
        if self.presence.has_room(room):
            self.typing_relay.typing(member, room, handle)

    def online(self, room: str) -> int:
        return self.fanout.online(room)

    def status(self) -> str:
        """One line on how this process is doing (systemd's ``STATUS=``, read in ``systemctl status``)."""
        sockets, rooms = self.fanout.counts()
        return f"{sockets} sockets in {rooms} rooms, backend {self.backend_kind}"

    def send_in_turn(self, member: Member, room: str, data: bytes) -> None:
        self.fanout.send_in_turn(member, room, data)

    def encoded(self, message: StoredMessage) -> str:
        """A stored message's JSON: the broadcast's own, if this process just broadcast it."""
        return self.fanout.encoded(message)

    # -- moderation (the moderation API; ``rooms.room.moderation`` says what each does) ---------------

    def is_locked(self, room: str) -> bool:
        return self.moderation.is_locked(room)

    # Each action names the moderator who takes it (``by``), whom the audit log keeps (``Identity.actor``).

    async def set_locked(self, room: str, locked: bool, by: Identity) -> None:
        await self.moderation.set_locked(room, locked, by.actor)

    async def delete_message(self, room: str, message_id: str, by: Identity) -> bool:
        return await self.moderation.delete_message(room, message_id, by.actor)

    async def bans(self) -> list[Ban]:
        return await self.moderation.bans()

    async def ban(
        self, handle: str | None, address: str | None, room: str | None, seconds: int | None, reason: str, by: Identity
    ) -> Ban:
        return await self.moderation.ban(handle, address, room, seconds, reason, by.actor)

    async def lift_ban(self, ban: Ban, by: Identity) -> bool:
        return await self.moderation.lift_ban(ban, by.actor)

    async def invited(self, room: str, seconds: int, expires: str, by: Identity) -> None:
        await self.moderation.invited(room, seconds, expires, by.actor)

    async def audit_page(
        self, limit: int, before: int | None, shown: Callable[[str | None], bool]
    ) -> tuple[list[AuditEntry], int | None]:
        """The audit log, newest first: see ``rooms.room.audit.read_page``."""
        return await read_page(self._backend, limit, before, shown)

    def metrics_exposition(self) -> bytes:
        """The metrics, as Prometheus scrapes them."""
        return self.metrics.exposition()

    def start(self) -> None:
        """Start removing idle rooms, if ``history.expire_after_days`` asks for it (on the running loop)."""
        self._expiry.start()

    # -- shutdown -------------------------------------------------------------------------------

    def stop_accepting(self) -> None:
        """Refuse new posts (shutdown): what is already in flight is still stored and delivered."""
        self._accepting = False

    async def wait_idle(self) -> None:
        """Return once no store is in flight (shutdown waits here so every acknowledged message is stored)."""
        await self._idle.wait()

    def close_all(self) -> None:
        self._expiry.close()
        self.moderation.close()
        self.fanout.close_all()
        self.presence.close()
        self.typing_relay.close()

    async def wait_empty(self) -> None:
        await self.fanout.wait_empty()

    async def wait_closed(self) -> None:
        """Return once what ``close_all`` stopped has ended (the presence ticks under way)."""
        await self.presence.wait_closed()
