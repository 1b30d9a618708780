"""One socket's conversation with its room, free of Tornado: what a frame from the client becomes.

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
from typing import Protocol

from backends.base import NewMessage, StoreResult
from backends.errors import BackendUnavailable, MessageDeleted, QuotaExceeded
from rooms.access.identity import ANONYMOUS, Identity
from rooms.errors import Forbidden, RateLimited, ShuttingDown
from rooms.protocol import (
    CloseCode,
    ErrorCode,
    Hello,
    Limits,
    ProtocolError,
    Typing,
    decode_client_frame,
    encode_error,
    encode_message,
    text_frame,
)
from rooms.room.fanout import Member
from rooms.room.hub import RoomHub

log = logging.getLogger(__name__)

# Messages one socket may have waiting to be stored at once; past this, its next frame is not read
# until one is answered, so a fast sender is held back, not buffered.
MAX_STORES_IN_FLIGHT = 32
# More than ``limits.burst`` invalid frames within this many seconds closes the socket (1008): a client
# that keeps sending them is broken or hostile, and each costs an error frame to answer.
INVALID_FRAMES_WINDOW = 10.0
# A socket's typing frames closer together than this are dropped without an answer (PROTOCOL.md).
TYPING_INTERVAL = 2.0


class Socket(Member, Protocol):
    """What a session needs of its socket: a member of its room, which it may close."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Send a close frame."""


class SocketSession:
    __slots__ = (
        "_handle",
        "_hub",
        "_identity",
        "_invalid_times",
        "_limits",
        "_max_refused",
        "_refused_in_a_row",
        "_room",
        "_sender",
        "_socket",
        "_stores",
        "_typed_at",
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
    ) -> None:
        self._hub = hub
        self._identity = identity  # who the socket's token says it is: its messages go under that name
        self._room = room
        self._socket = socket
        self._limits = limits
        self._sender = hub.rates.for_connection(address)
        # Refused for rate in a row, past which the socket is closed: a client that keeps on flooding.
        self._max_refused = max_refused
        self._refused_in_a_row = 0
        self._invalid_times: deque[float] | None = None
        self._stores: set[asyncio.Future[StoreResult]] = set()
        self._handle: str | None = None  # announced with hello
        self._typed_at = -TYPING_INTERVAL

    def receive(self, frame: str | bytes) -> Awaitable[None] | None:
        """Handle one frame; what it returns must be awaited before the next frame is read."""
        try:
            message = decode_client_frame(frame, self._room, self._limits, self._sender.address)
            if not isinstance(message, NewMessage):
                return self._signal(message)
            if self._typed_at > -TYPING_INTERVAL:  # it has typed: a typing frame held for a batch goes first
                self._hub.signals.before_message(self._socket, self._room)
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
        if not self._identity.moderator and self._hub.moderation.refusal(self._room, handle, self._sender.address):
            return None  # who may not post here does not type here either: dropped, as too frequent typing is
        now = time.monotonic()
        if now - self._typed_at >= TYPING_INTERVAL:
            self._typed_at = now
            self._hub.typing(self._socket, self._room, handle)
        return None

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
        self._hub.metrics.client_errors.labels(ErrorCode.RATE_LIMITED).inc()
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
        self._hub.metrics.client_errors.labels(code).inc()
        self._hub.send_in_turn(self._socket, self._room, text_frame(encode_error(code, reason)))
