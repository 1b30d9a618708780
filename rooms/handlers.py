"""Thin Tornado handlers: decode the request, call the room layer once, map the answer to the wire."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

from tornado.iostream import IOStream, StreamBufferFullError, StreamClosedError
from tornado.util import ObjectDict
from tornado.web import HTTPError, RequestHandler
from tornado.websocket import WebSocketHandler

from backends.base import StoreResult
from rooms.errors import BackendUnavailable, InvalidMessageId, ProtocolError, ShuttingDown
from rooms.hub import RoomHub
from rooms.keepalive import Keepalive
from rooms.protocol import (
    decode_client_frame,
    encode,
    error_payload,
    is_valid_label,
    load_json,
    text_frame,
    validate_client_object,
)
from rooms.ratelimit import TokenBucket
from rooms.wordlist import random_label

log = logging.getLogger(__name__)

MAX_API_LIMIT = 200
BUSIEST_ROOMS_SHOWN = 10
# Messages one socket may have waiting to be stored at once; past this, its next frame is not read
# until one is answered, so a fast sender is held back, not buffered.
MAX_STORES_IN_FLIGHT = 32


class BaseHandler(RequestHandler):
    def initialize(self, hub: RoomHub, options: dict[str, Any]) -> None:
        self.hub = hub
        self.options = options

    def room_label(self, label: str) -> str:
        if not is_valid_label(label):
            raise HTTPError(404, reason="No such room")
        return label

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.render("error.html", status_code=status_code, reason=self._reason)


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise HTTPError(404, reason="Not found")


class HomeHandler(BaseHandler):
    async def get(self) -> None:
        # The open-a-room form submits here as ?room=<label> where the page's script does not run.
        typed = self.get_query_argument("room", None)
        if typed is not None and is_valid_label(typed):
            return self.redirect(f"/{typed}/", status=302)
        if typed is not None:
            self.set_status(400)
        try:
            busiest = await self.hub.backend.busiest_rooms(BUSIEST_ROOMS_SHOWN)
        except BackendUnavailable:
            busiest = []
        self.render("home.html", busiest=busiest, online=self.hub.online, typed=typed)

    head = get


class NewRoomHandler(BaseHandler):
    def get(self) -> None:
        self.redirect(f"/{random_label()}/", status=302)


class RoomRedirectHandler(BaseHandler):
    def get(self, label: str) -> None:
        query = f"?{self.request.query}" if self.request.query else ""
        self.redirect(f"/{self.room_label(label)}/{query}", permanent=True)


class RoomPageHandler(BaseHandler):
    async def get(self, label: str) -> None:
        room = self.room_label(label)
        try:
            await self.hub.backend.ensure_room(room)
            page = await self.hub.backend.history(room, self.options["page_size"])
        except BackendUnavailable as exc:
            raise HTTPError(503, reason="Storage unavailable", log_message=str(exc)) from None
        newest_id = page.messages[-1].id if page.messages else "0"
        self.render(
            "room.html",
            room=room,
            messages=page.messages,
            newest_id=newest_id,
            limits=self.options["limits"],
        )

    head = get


class JSONHandler(BaseHandler):
    def write_json(self, payload: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(encode(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.write_json({"error": self._reason}, status_code)


class MessagesApiHandler(JSONHandler):
    async def get(self, label: str) -> None:
        room = self.room_label(label)
        limit = self._limit()
        before = self.get_query_argument("before", None)
        after = self.get_query_argument("after", None)
        if before is not None and after is not None:
            return self.write_json({"error": "give 'before' or 'after', not both"}, 400)
        try:
            for name, value in (("before", before), ("after", after)):
                if value is not None:
                    self._check_id(name, value)
            await self.hub.backend.ensure_room(room)
            page = await self.hub.backend.history(room, limit, before=before, after=after)
        except BackendUnavailable as exc:
            return self.write_json({"error": f"storage unavailable: {exc}"}, 503)
        self.write_json(
            {"room": room, "messages": [m.to_wire() for m in page.messages], "has_more": page.has_more}
        )

    def _limit(self) -> int:
        raw = self.get_query_argument("limit", None)
        if raw is None:
            return int(self.options["page_size"])
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_API_LIMIT:
            raise HTTPError(400, reason=f"'limit' must be a whole number from 1 to {MAX_API_LIMIT}")
        return int(raw)

    def _check_id(self, name: str, value: str) -> None:
        try:
            self.hub.backend.id_key(value)
        except InvalidMessageId:
            raise HTTPError(400, reason=f"'{name}' is not a message id: {value!r}") from None

    async def post(self, label: str) -> None:
        room = self.room_label(label)
        if len(self.request.body) > self.options["max_frame_bytes"]:
            limit = self.options["max_frame_bytes"]
            return self.write_json({"error": f"request body too large: over {limit} bytes"}, 400)
        try:
            message = validate_client_object(load_json(self.request.body), self.options["limits"])
        except ProtocolError as exc:
            return self.write_json({"error": exc.reason}, 400)
        try:
            result = await self.hub.post(room, message)
        except BackendUnavailable as exc:
            return self.write_json({"error": f"not stored, storage unavailable: {exc}"}, 503)
        if result.duplicate:
            # The answer the first request had, as idempotency keys elsewhere do, marked as a replay.
            self.set_header("Idempotent-Replayed", "true")
        self.write_json(result.message.to_wire(), 201)


class HealthHandler(JSONHandler):
    async def get(self) -> None:
        kind = self.hub.backend.kind
        try:
            await self.hub.backend.health()
        except BackendUnavailable as exc:
            return self.write_json({"status": "unavailable", "backend": kind, "error": str(exc)}, 503)
        self.write_json({"status": "ok", "backend": kind})

    head = get  # uptime monitors often ask with HEAD


class MetricsHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.hub.metrics.exposition())


class ChatSocketHandler(WebSocketHandler):
    def initialize(self, hub: RoomHub, options: dict[str, Any]) -> None:
        self.hub = hub
        self.options = options
        self.room = ""
        self.since: str | None = None
        self.joined = False

    async def get(self, label: str) -> None:
        if not is_valid_label(label):
            raise HTTPError(404, reason="No such room")
        since = self.get_query_argument("since", None) or None
        if since is not None:
            try:
                self.hub.backend.id_key(since)
            except InvalidMessageId:
                raise HTTPError(400, reason="'since' is not a message id") from None
        self.room, self.since = label, since
        # In the room before the handshake is answered: a client that has connected misses nothing sent
        # after that. Storage that cannot be reached is told after the handshake, as a 1013 close.
        self.storage_error: BackendUnavailable | None = None
        try:
            await self.hub.backend.ensure_room(label)
            await self.hub.join(self, label)
        except BackendUnavailable as exc:
            self.storage_error = exc
        try:
            await super().get(label)
        finally:
            # A refused or failed handshake never opens, and so never closes; leaving twice is harmless.
            self.hub.leave(self, label)

    def check_origin(self, origin: str) -> bool:
        """Called only for cross-origin handshakes (Tornado already let through the ones whose Origin is
        this server's own Host). Browsers let any page open a WebSocket anywhere, so without this check a
        page elsewhere could chat as its visitors; behind a reverse proxy that rewrites Host, the
        operator lists the public origin in ``server.allowed_origins``."""
        allowed: frozenset[str] = self.options["allowed_origins"]
        return "*" in allowed or normalize_origin(origin) in allowed

    async def open(self, label: str) -> None:
        # The handshake is over: the HTTP connection object (the stream is detached from it), the request
        # headers (a browser's cookies and user agent run to kilobytes) and the template namespace are
        # never used again, yet would stay in memory as long as the socket. The headers are emptied in
        # place because Tornado's suspended WebSocketHandler.get still holds them.
        self.request.connection = None
        self.request.headers.clear()
        self.ui = ObjectDict()
        stream = self.ws_connection.stream  # type: ignore[union-attr]
        # Past this many queued bytes a write raises, and the hub closes the socket with 1013.
        stream.max_write_buffer_size = self.options["send_buffer_bytes"]
        self.stream = stream
        # TLS streams must go through SSLIOStream.write (a partial SSL write has to be retried as is).
        self.send_directly = type(stream) is IOStream
        self.set_nodelay(True)
        self.bucket = TokenBucket(self.options["messages_per_second"], self.options["burst"])
        self.refused_in_a_row = 0
        self.stores_in_flight: set[asyncio.Future[StoreResult]] = set()
        self.hub.metrics.connections.inc()
        self.joined = True
        self.awaiting_pong = False
        keepalive: Keepalive | None = self.options["keepalive"]
        if keepalive is not None:
            keepalive.add(self)
        try:
            if self.storage_error is not None:
                raise self.storage_error
            await self.hub.go_live(self, self.room, self.since)
        except BackendUnavailable:
            self.close(1013, "storage unavailable, try again later")

    def on_message(self, frame: str | bytes) -> Awaitable[None] | None:
        # A plain method: Tornado wraps a coroutine in a Task and a Future of its own for every frame,
        # and reads nothing more until it ends. What this returns is awaited only when it must wait.
        try:
            message = decode_client_frame(frame, self.options["limits"])
        except ProtocolError as exc:
            return self._reply_error_in_turn(exc.code, exc.reason)
        if not self.bucket.take():
            return self._refuse_in_turn()
        self.refused_in_a_row = 0
        # The next frame is read while this one is stored, so a socket's messages can share a commit
        # or a Redis pipeline; the backend answers them in the order they were sent.
        store = self.hub.post_soon(self.room, message)
        self.stores_in_flight.add(store)
        store.add_done_callback(self._store_answered)
        if len(self.stores_in_flight) >= MAX_STORES_IN_FLIGHT:
            return self._stores_answered(asyncio.FIRST_COMPLETED)
        return None

    def _store_answered(self, store: asyncio.Future[StoreResult]) -> None:
        self.stores_in_flight.discard(store)
        if store.cancelled():
            return
        error = store.exception()
        if error is None:
            self._answer(store.result())
        elif isinstance(error, ShuttingDown):
            self.reply_error("unavailable", str(error))
        elif isinstance(error, BackendUnavailable):
            self.reply_error("unavailable", "storage unavailable; this message was not sent")
        else:
            log.error("storing a message failed", exc_info=error)
            self.close(1011, "internal error")

    def _answer(self, result: StoreResult) -> None:
        # A new message reaches its sender through the room's broadcast; a resent one only here.
        if result.duplicate:
            self.hub.send_in_turn(self, self.room, text_frame(encode(result.message.to_wire())))

    def _reply_error_in_turn(self, code: str, reason: str) -> Awaitable[None] | None:
        """Replies keep the order of the frames they answer: an error waits for the messages before it."""
        if not self.stores_in_flight:
            return self.reply_error(code, reason)
        return self._reply_error_after_earlier_messages(code, reason)

    async def _reply_error_after_earlier_messages(self, code: str, reason: str) -> None:
        await self._stores_answered(asyncio.ALL_COMPLETED)
        self.reply_error(code, reason)

    def _refuse_in_turn(self) -> Awaitable[None] | None:
        self.refused_in_a_row += 1
        if self.refused_in_a_row <= self.options["burst"]:
            return self._reply_error_in_turn("rate_limited", "too many messages; this one was not sent, slow down")
        self.hub.metrics.client_errors.labels("rate_limited").inc()
        if not self.stores_in_flight:
            return self.close(1008, "rate limit exceeded")
        return self._close_after_earlier_messages(1008, "rate limit exceeded")

    async def _close_after_earlier_messages(self, code: int, reason: str) -> None:
        await self._stores_answered(asyncio.ALL_COMPLETED)
        self.close(code, reason)

    async def _stores_answered(self, return_when: str) -> None:
        # Checked when this runs: the set may have emptied since the frame was read.
        if self.stores_in_flight:
            await asyncio.wait(set(self.stores_in_flight), return_when=return_when)

    def reply_error(self, code: str, reason: str) -> None:
        self.hub.metrics.client_errors.labels(code).inc()
        self.hub.send_in_turn(self, self.room, text_frame(encode(error_payload(code, reason))))

    def send_frames(self, data: bytes) -> None:
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return  # nothing may follow a close frame
        stream = self.stream
        if self.send_directly and not stream.writing():
            # IOStream.write makes a Future, schedules its callback and slices its buffer for every call:
            # in a big room that costs more than the send itself. With nothing queued, the socket takes
            # the bytes straight away; only what it does not take is queued in the stream, and every later
            # frame then queues behind it, so order holds and the send buffer bound still applies.
            try:
                sent = stream.socket.send(data)
            except OSError:
                sent = 0  # a full socket, or a dead one: the stream's own write handles both as always
            if sent == len(data):
                return
            data = data[sent:]
        try:
            stream.write(data)
        except StreamBufferFullError:
            self._close_slow_reader()
        except StreamClosedError:
            pass

    def _close_slow_reader(self) -> None:
        self.hub.metrics.slow_clients_closed.inc()
        self.hub.leave(self, self.room)
        # The close frame must still fit in the buffer; Tornado aborts the stream if no reply comes.
        self.stream.max_write_buffer_size = None
        self.close(1013, "too slow to keep up; reconnect to resume")

    def keepalive_visit(self) -> None:
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return
        if self.awaiting_pong:
            self.close(reason="ping timed out")
            return
        self.awaiting_pong = True
        self.send_frames(PING_FRAME)

    def on_pong(self, data: bytes) -> None:
        self.awaiting_pong = False

    def close_going_away(self) -> None:
        self.close(1001, "server shutting down")

    def on_close(self) -> None:
        if self.joined:
            self.joined = False
            self.hub.metrics.connections.dec()
            self.hub.leave(self, self.room)
            keepalive: Keepalive | None = self.options["keepalive"]
            if keepalive is not None:
                keepalive.discard(self)


PING_FRAME = b"\x89\x00"  # FIN, opcode 9 (ping), unmasked, no payload


DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, without a trailing slash or path, or the scheme's own port."""
    parts = urlsplit(origin.strip().lower())
    if not (parts.scheme and parts.netloc):
        return origin.strip().lower()
    try:
        default_port = parts.port is not None and parts.port == DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port that is not a number: compared as written
        default_port = False
    netloc = parts.netloc.rsplit(":", 1)[0] if default_port else parts.netloc
    return f"{parts.scheme}://{netloc}"
