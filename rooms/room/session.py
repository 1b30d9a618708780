"""One socket's life in its room, free of Tornado: from its handshake to its close, and what a frame from
the client becomes. The web layer only translates between the wire and this object.

Its life: ``join`` before the handshake is answered (its address's open sockets counted, held in its room
so that it misses nothing), ``open`` once it is (watched for bans, pinged, sent what it missed and then
live), ``close`` when it closes (everything given back, in one place); ``handshake_ended`` when the
handshake's request is over, which for a socket that never opened is the only end it gets.

A frame is decoded, posted through the room layer (which applies the rate policy) and answered. The
next frame is read while this one is stored, so a socket's messages can share a commit or a Redis
pipeline; every reply still keeps the order of the frames it answers (an error waits for the messages
sent before it), and a socket with too many stores in flight is not read until one is answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from enum import Enum, auto
from typing import Protocol

from backends.base import NewMessage, StoreResult
from backends.errors import BackendUnavailable, MessageDeleted, QuotaExceeded, ReplyToMissing
from rooms.access.identity import ANONYMOUS, Identity
from rooms.change_frames import ChangeFrame, Delete, Edit, React, decode_frame
from rooms.errors import Forbidden, RateLimited, ShuttingDown, TooManyConnections
from rooms.protocol import (
    PING_FRAME,
    CloseCode,
    ErrorCode,
    Feature,
    Hello,
    Limits,
    ProtocolError,
    Typing,
    encode_error,
    encode_message,
    text_frame,
)
from rooms.room.hub import RoomHub
from rooms.room.moderation import BANNED_ADDRESS
from rooms.room.socket import CLOSED_SOCKET, Socket

log = logging.getLogger(__name__)

# Messages one socket may have waiting to be stored at once; past this, its next frame is not read
# until one is answered, so a fast sender is held back, not buffered.
MAX_STORES_IN_FLIGHT = 32
# More than ``limits.burst`` invalid frames within this many seconds closes the socket (1008): a client
# that keeps sending them is broken or hostile, and each costs an error frame to answer.
INVALID_FRAMES_WINDOW = 10.0
# A socket's typing frames closer together than this are dropped without an answer (docs/protocol.md).
TYPING_INTERVAL = 2.0
TOO_SLOW = "too slow to keep up; reconnect to resume"


class Keepalive(Protocol):
    """The timer that visits every open socket's session once per ping interval."""

    def add(self, session: SocketSession) -> None: ...

    def discard(self, session: SocketSession) -> None: ...


class State(Enum):
    """Where a socket is in its life."""

    NEW = auto()  # nothing counted or held for it yet
    JOINING = auto()  # counted among its address's sockets and held in its room; the handshake is answered
    OPEN = auto()  # the handshake is answered: frames come and go
    CLOSED = auto()


class SocketSession:
    __slots__ = (
        "_awaiting_pong",
        "_features",
        "_handle",
        "_handshake_over",
        "_hub",
        "_identity",
        "_invalid_times",
        "_keepalive",
        "_limits",
        "_max_refused",
        "_refused_in_a_row",
        "_room",
        "_sender",
        "_since",
        "_socket",
        "_storage_error",
        "_stores",
        "_typed_at",
        "_watched",
        "address",
        "state",
    )

    def __init__(
        self,
        hub: RoomHub,
        room: str,
        socket: Socket,
        limits: Limits,
        max_refused: int,
        address: str = "",
        identity: Identity = ANONYMOUS,
        *,
        features: frozenset[Feature] = frozenset(),
        since: str | None = None,
        keepalive: Keepalive | None = None,
    ) -> None:
        self._hub = hub
        self._identity = identity  # who the socket's token says it is: its messages go under that name
        self._room = room
        self._socket = socket
        self._limits = limits
        self.address = address  # as the request came: what its address's open sockets count
        self._sender = hub.socket_sender(address)
        self._features = features  # what it asked for beyond messages (presence, typing, deletes)
        self._since = since  # the last message id the client has, if any: it is sent what followed
        self._keepalive = keepalive
        self.state = State.NEW
        self._handshake_over = False
        self._storage_error: BackendUnavailable | None = None  # storage unreachable as it joined
        self._watched = False  # a ban of its address closes it (never a moderator's)
        self._awaiting_pong = False
        # Refused for rate in a row, past which the socket is closed: a client that keeps on flooding.
        self._max_refused = max_refused
        self._refused_in_a_row = 0
        self._invalid_times: deque[float] | None = None
        self._stores: set[asyncio.Future[StoreResult]] = set()
        self._handle: str | None = None  # announced with hello
        self._typed_at = -TYPING_INTERVAL

    @property
    def room(self) -> str:
        return self._room

    # -- its life ----------------------------------------------------------------------------------

    def address_banned(self) -> bool:
        """Whether a ban of its address keeps it out of its room (never a moderator): refused (403)."""
        return not self._identity.moderator and self._hub.address_banned(self._room, self._sender.address)

    async def join(self) -> None:
        """Before the handshake is answered: count the socket among its address's (``TooManyConnections``
        when the address holds its limit), and hold it in its room, so that a client that has connected
        misses nothing sent after that. Storage that cannot be reached is told once it is open, as a 1013
        close."""
        if not self._hub.open_connection(self.address):
            raise TooManyConnections("too many connections from this address")
        self.state = State.JOINING
        try:
            await self._hub.join(self._socket, self._room, self._features)
        except BackendUnavailable as exc:
            self._storage_error = exc

    async def open(self) -> None:
        """The handshake is answered: count it open, watch it for bans of its address (closed with 1008 if
        one came meanwhile), ping it, and send it what it missed after ``since``, then everything live."""
        self.state = State.OPEN
        self._hub.socket_opened()
        if not self._identity.moderator:
            # Checked again here: a ban may have come while the handshake was answered.
            if not self._hub.watch_for_bans(self._socket, self._room, self._sender.address):
                self._socket.close(CloseCode.POLICY, BANNED_ADDRESS)
                return
            self._watched = True
        self._awaiting_pong = False
        if self._keepalive is not None:
            self._keepalive.add(self)
        try:
            if self._storage_error is not None:
                raise self._storage_error
            if not self._hub.is_held(self._socket, self._room):
                # What waited for it while its handshake was answered outgrew its send buffer.
                self._socket.close(CloseCode.TRY_AGAIN_LATER, TOO_SLOW)
                return
            await self._hub.go_live(self._socket, self._room, self._since, self._features)
        except BackendUnavailable:
            self._socket.close(CloseCode.TRY_AGAIN_LATER, "storage unavailable, try again later")

    def handshake_ended(self) -> None:
        """The handshake's request is over: the socket is open, or it was refused or failed before it
        opened (or as it did). An open socket stays in its room until it closes; any other leaves it here
        (leaving twice is harmless), and a socket that never opened never closes, so its address's count
        is given back here."""
        self._handshake_over = True
        if self.state is State.OPEN and not self._socket.is_closing():
            return
        self._hub.leave(self._socket, self._room)
        if self.state is State.JOINING:
            self._hub.close_connection(self.address)
            self.state = State.CLOSED
        if self.state is State.CLOSED:
            self._socket = CLOSED_SOCKET

    def close(self) -> None:
        """The socket closed: its address's count given back, no longer watched for bans, out of its room
        and its presence, no longer pinged. Safe to repeat."""
        if self.state in (State.JOINING, State.OPEN):
            self._hub.close_connection(self.address)
        if self._watched:
            self._hub.stop_watching(self._socket, self._sender.address)
            self._watched = False
        if self.state is State.OPEN:
            self._hub.socket_closed()
            self._hub.leave(self._socket, self._room)
            if self._keepalive is not None:
                self._keepalive.discard(self)
        self.state = State.CLOSED
        if self._handshake_over:  # else the handshake's end still takes it out of its room
            self._socket = CLOSED_SOCKET

    def left_too_slow(self) -> None:
        """It fell too far behind: out of its room (the socket closes with 1013, or is refused as it opens)."""
        self._hub.leave_too_slow(self._socket, self._room)

    def keepalive_visit(self) -> None:
        """Close if the last ping went unanswered, else send a ping."""
        if self._socket.is_closing():
            return
        if self._awaiting_pong and self._hub.is_held(self._socket, self._room):
            # Still replaying (no frame is read until it is live), and nothing sent went to its socket since
            # the last visit: it stays behind.
            self._socket.close_too_slow()
            return
        if self._awaiting_pong:
            # Out of the room (and its presence) now, not when the close handshake with a dead peer times out.
            self._hub.leave(self._socket, self._room)
            self._socket.close(reason="ping timed out")
            return
        self._awaiting_pong = True
        self._socket.send_frames(PING_FRAME)

    def peer_answered(self) -> None:
        """The peer answered a ping, or took everything it was sent (the ping among it): it is alive."""
        self._awaiting_pong = False

    # -- its frames -------------------------------------------------------------------------------

    def receive(self, frame: str | bytes) -> Awaitable[None] | None:
        """Handle one frame; what it returns must be awaited before the next frame is read."""
        try:
            message = decode_frame(frame, self._room, self._limits, self._sender.address)
            if not isinstance(message, NewMessage):
                if isinstance(message, (Edit, Delete, React)):
                    return self._change(message)
                return self._signal(message)
            if self._typed_at > -TYPING_INTERVAL:  # it has typed: a typing frame held for a batch goes first
                self._hub.before_message(self._socket, self._room)
            store = self._hub.post_soon(message, self._sender, self._identity)
        except ProtocolError as exc:
            if self._too_many_invalid():
                return self._close_in_turn("too many invalid frames")
            return self._reply_error_in_turn(exc.code, exc.reason)
        except RateLimited as exc:
            return self._refuse_in_turn(str(exc))
        except Forbidden as exc:
            self._refused_in_a_row = 0
            return self._reply_error_in_turn(ErrorCode.FORBIDDEN, str(exc))
        self._refused_in_a_row = 0
        self._stores.add(store)
        store.add_done_callback(self._store_answered)
        if len(self._stores) >= MAX_STORES_IN_FLIGHT:
            return self._stores_answered(asyncio.FIRST_COMPLETED)
        return None

    def _signal(self, frame: Hello | Typing) -> Awaitable[None] | None:
        if isinstance(frame, Hello):
            self._handle = self._identity.handle(frame.handle)
            self._hub.announce(self._socket, self._room, self._handle)
            return None
        # Once a socket said who it is (its token, or hello), that is who types: a frame cannot type for
        # someone else.
        handle = self._identity.name or self._handle or frame.handle
        if handle is None:
            if self._too_many_invalid():
                return self._close_in_turn("too many invalid frames")
            return self._reply_error_in_turn(
                ErrorCode.INVALID_MESSAGE, "field 'handle' is missing: name one, or announce it with hello first"
            )
        if self._hub.refusal(self._identity, self._room, handle, self._sender.address):
            return None  # who may not post here does not type here either: dropped, as too frequent typing is
        now = time.monotonic()
        if now - self._typed_at >= TYPING_INTERVAL:
            self._typed_at = now
            self._hub.typing(self._socket, self._room, handle)
        return None

    async def _change(self, frame: ChangeFrame) -> None:
        """An edit, a deletion or a reaction, made once the messages sent before it are answered; its
        frame reaches the room's sockets that asked for it, and only an error is answered here."""
        await self._stores_answered(asyncio.ALL_COMPLETED)
        room, identity, address = self._room, self._identity, self._sender.address
        try:
            if isinstance(frame, Edit):
                await self._hub.edit(room, frame.id, frame.message, frame.author, identity, address)
            elif isinstance(frame, Delete):
                await self._hub.delete_own(room, frame.id, frame.author, identity, address)
            else:
                await self._hub.react(room, frame.id, frame.emoji, frame.on, self._handle, identity, self._sender)
                self._refused_in_a_row = 0
        except ProtocolError as exc:
            self.reply_error(exc.code, exc.reason)
        except RateLimited as exc:
            self._refuse_in_turn(str(exc))  # nothing is in flight now: answered (or closed) at once
        except Forbidden as exc:
            self.reply_error(ErrorCode.FORBIDDEN, str(exc))
        except BackendUnavailable:
            self.reply_error(ErrorCode.UNAVAILABLE, "storage unavailable; nothing was changed")

    def _store_answered(self, store: asyncio.Future[StoreResult]) -> None:
        self._stores.discard(store)
        if store.cancelled():
            return
        error = store.exception()
        if error is None:
            result = store.result()
            # A new message reaches its sender through the room's broadcast; a resent one only here.
            if result.duplicate:
                self._hub.send_in_turn(self._socket, self._room, text_frame(encode_message(result.message)))
        elif isinstance(error, QuotaExceeded):
            self.reply_error(ErrorCode.RATE_LIMITED, f"{error}; this message was not sent")
        elif isinstance(error, ReplyToMissing):
            self.reply_error(ErrorCode.INVALID_MESSAGE, f"field 'reply_to': {error}; this message was not sent")
        elif isinstance(error, MessageDeleted):
            self.reply_error(ErrorCode.FORBIDDEN, str(error))
        elif isinstance(error, ShuttingDown):
            self.reply_error(ErrorCode.UNAVAILABLE, str(error))
        elif isinstance(error, BackendUnavailable):
            self.reply_error(ErrorCode.UNAVAILABLE, "storage unavailable; this message was not sent")
        else:
            log.error("storing a message failed", exc_info=error)
            self._socket.close(CloseCode.INTERNAL_ERROR, "internal error")

    def _reply_error_in_turn(self, code: ErrorCode, reason: str) -> Awaitable[None] | None:
        """Replies keep the order of the frames they answer: an error waits for the messages before it."""
        if not self._stores:
            self.reply_error(code, reason)
            return None
        return self._after_earlier_messages(lambda: self.reply_error(code, reason))

    def _refuse_in_turn(self, reason: str) -> Awaitable[None] | None:
        self._refused_in_a_row += 1
        if self._refused_in_a_row <= self._max_refused:
            return self._reply_error_in_turn(ErrorCode.RATE_LIMITED, reason)
        self._hub.client_error(ErrorCode.RATE_LIMITED)
        return self._close_in_turn("rate limit exceeded")

    def _too_many_invalid(self) -> bool:
        """Whether this invalid frame is one more than ``burst`` within ``INVALID_FRAMES_WINDOW`` seconds."""
        if self._invalid_times is None:  # most sockets never send one: no deque for them
            self._invalid_times = deque(maxlen=self._max_refused + 1)
        now = time.monotonic()
        self._invalid_times.append(now)
        return len(self._invalid_times) > self._max_refused and now - self._invalid_times[0] <= INVALID_FRAMES_WINDOW

    def _close_in_turn(self, reason: str) -> Awaitable[None] | None:
        """Close with 1008 once the messages sent before are answered."""
        if not self._stores:
            self._socket.close(CloseCode.POLICY, reason)
            return None
        return self._after_earlier_messages(lambda: self._socket.close(CloseCode.POLICY, reason))

    async def _after_earlier_messages(self, then: Callable[[], None]) -> None:
        await self._stores_answered(asyncio.ALL_COMPLETED)
        then()

    async def _stores_answered(self, return_when: str) -> None:
        # Checked when this runs: the set may have emptied since the frame was read.
        if self._stores:
            await asyncio.wait(set(self._stores), return_when=return_when)

    def reply_error(self, code: ErrorCode, reason: str) -> None:
        self._hub.client_error(code)
        self._hub.send_in_turn(self._socket, self._room, text_frame(encode_error(code, reason)))
