"""The handshake of ``/chat/<label>/`` answered by the server itself, without Tornado's request handler.

Joining is what a busy server answers most, and Tornado's handler machinery (the request object, the
handler with its default headers and transforms, the 101 through ``finish`` and ``flush``) cost about
a third of a join. A connection's first head (``rooms.web.first_request``) that is a handshake this
route accepts is answered here: the same checks in the same terms, the same 101 byte for byte, the same
access line and request metrics, then the same socket (``ChatSocket``) on the same frame protocol.

Only what will be accepted is taken. The checks here decide that and change nothing; any request they
do not pass (a refusal, an ``OPTIONS``, anything unusual in its head, its query or its credential) is
left to Tornado and ``ChatSocketHandler``, which check it again and answer it exactly as they always
have. The one refusal answered here is 429, which only the join finds out: it is written as Tornado
writes it, and the connection then goes on as Tornado's.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from tornado.escape import parse_qs_bytes, xhtml_escape
from tornado.httputil import format_timestamp
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketProtocol13, _WebSocketParams

from backends.errors import InvalidMessageId
from rooms.access.identity import Identity
from rooms.access.policy import AccessPolicy
from rooms.errors import NotAdmitted, TooManyConnections, Unauthenticated
from rooms.protocol import Feature, is_valid_label, parse_features
from rooms.room.hub import RoomHub
from rooms.room.session import SocketSession
from rooms.web.access_log import RequestLog
from rooms.web.chat_socket import ChatSocket
from rooms.web.client_addresses import ClientAddresses
from rooms.web.frame_protocol import FrameBudgetProtocol
from rooms.web.handlers.base import SAFETY_HEADERS, SiteOptions, names_a_credential
from rooms.web.origins import AllowedHosts
from rooms.web.request_head import Headers, RequestHead
from rooms.web.request_stream import RequestStream

ROUTE = "/chat/{label}/"
# The route's pattern as Tornado matches it; a label that is not valid as written (percent-encoded, say)
# is Tornado's to decode, or to refuse.
PATH = re.compile(r"/chat/([^/]+)/?\Z")
# A Host this route takes: a name or an IPv4 address and a port, a part of what Tornado accepts.
HOST = re.compile(r"[A-Za-z0-9._~-]+(?::[0-9]*)?\Z")
# What Tornado replaces in an argument before it strips it: one holding any of these, or spaces around
# it, is left to Tornado.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0e-\x1f]")
MAX_QUERY_FIELDS = 32  # far below Tornado's own bound on a query's fields
TOO_MANY = 429

# The answers' headers in the order Tornado writes them: its Date, SafeHeaders' (with Cache-Control when
# the answer is for its sender only), the answer's own, and the Vary of the compression transform.
_SAFETY = "".join(f"{name}: {value}\r\n" for name, value in SAFETY_HEADERS.items())
NO_STORE = "Cache-Control: no-store\r\n"
VARY = "Vary: Accept-Encoding\r\n\r\n"


class LeftToTornado(Exception):
    """Something about the request is Tornado's to decide (a refusal, or a form it may not take)."""


class Accepted(NamedTuple):
    """A handshake this route answers: what its checks found."""

    room: str
    identity: Identity
    address: str
    since: str | None
    features: frozenset[Feature]
    no_store: bool  # for its sender only: no cache may keep the answer
    url_credential: bool  # a credential in its URL (an error answer is for its sender only too)


class ChatHandshakes:
    """The ``HeadRoute`` of ``/chat/<label>/``, for the server (``rooms.web.httpserver``)."""

    def __init__(
        self,
        hub: RoomHub,
        site: SiteOptions,
        access: AccessPolicy,
        addresses: ClientAddresses,
        hosts: AllowedHosts,
        request_log: RequestLog,
        max_message_size: int,
    ) -> None:
        self._hub = hub
        self._site = site
        self._access = access
        self._addresses = addresses
        self._hosts = hosts
        self._log = request_log
        request_log.expect(ROUTE, "GET", 101)
        # As ChatSocketHandler makes them: no Tornado pings (rooms' keepalive pings), no compression.
        self._params = _WebSocketParams(max_message_size=max_message_size)

    def serve(self, stream: RequestStream, head: RequestHead, peer: str, to_http: Callable[[], None]) -> bool:
        accepted = self._check(head, peer)
        if accepted is None:
            return False
        socket = ChatSocket(self._site, head.started)
        session = socket.session = SocketSession(
            self._hub,
            accepted.room,
            socket,
            self._site.limits,
            self._site.burst,
            accepted.address,
            accepted.identity,
            features=accepted.features,
            since=accepted.since,
            keepalive=self._site.keepalive,
        )
        if session.address_banned():
            return False
        answer = self._answer(stream, head, accepted, socket, to_http)
        if accepted.since is None:
            _run_until_it_waits(answer)
        else:  # a replay reads the store, whose clients may need a Task from their first step
            # A plain done callback: Tornado's add_future would wrap it in two more callbacks per join.
            asyncio.ensure_future(answer).add_done_callback(_raise_error)
        return True

    async def _answer(
        self,
        stream: RequestStream,
        head: RequestHead,
        accepted: Accepted,
        socket: ChatSocket,
        to_http: Callable[[], None],
    ) -> None:
        """Join, answer 101 and open, as ``ChatSocketHandler.get`` and Tornado's accept do."""
        session = socket.session
        try:
            try:
                await session.join()
            except TooManyConnections as exc:
                try:
                    self._refuse(stream, head, accepted, TOO_MANY, str(exc))
                except StreamClosedError:
                    return  # gone while it waited
                to_http()
                return
            connection = FrameBudgetProtocol(socket, self._params, self._site.frame_budget())
            # Logged as Tornado logs it, even for a client gone while it joined (its write is then refused).
            self._record(head, accepted, 101, 0)
            try:
                stream.write_now(self._switching(head, accepted))
            except StreamClosedError:
                return
            connection.stream = stream
            socket.connection = connection
            try:
                await socket.open(connection)
            except Exception:
                socket.log_exception(*sys.exc_info())
                connection._abort()
                return
            # A client's first frame comes after it has read the 101, which has only just been sent: what
            # it sent with its head is buffered already, and anything else is waited for.
            stream.read_when_readable()
            await connection._receive_frame_loop()
            stream.read_in_full_chunks()  # its first frame has been read, or is waited for
        finally:
            session.handshake_ended()

    def _check(self, head: RequestHead, peer: str) -> Accepted | None:
        """What the handshake of ``head`` is, if this route answers it: every check of ``ChatSocketHandler``
        and of Tornado on the way to it passes, and nothing about it is left for Tornado to decide."""
        try:
            return self._accepted(head, peer)
        except LeftToTornado:
            return None

    def _accepted(self, head: RequestHead, peer: str) -> Accepted:
        headers = head.headers
        match = PATH.match(head.path)
        if (
            match is None
            or not is_valid_label(match[1])
            or head.method != "GET"
            or head.version != "HTTP/1.1"
            or "Content-Length" in headers
            or "Transfer-Encoding" in headers
            or "Expect" in headers
            or HOST.match(headers.get("Host", "")) is None
            or not self._hosts.allow(headers["Host"])
            or headers.get("Upgrade", "").lower() != "websocket"
            or "upgrade" not in (part.strip().lower() for part in headers.get("Connection", "").split(","))
            or headers.get("Sec-WebSocket-Version") != "13"
            or not headers.get("Sec-Websocket-Key")
            or not self._origin_allowed(headers)
            or head.query.count("&") >= MAX_QUERY_FIELDS
        ):
            raise LeftToTornado()
        arguments = parse_qs_bytes(head.query, keep_blank_values=True)
        # Read as ChatSocketHandler.get and admit read them.
        credential = _argument(arguments, "token") or _bearer(headers)
        invite = _argument(arguments, "invite")
        since = _argument(arguments, "since") or None
        features = parse_features(_argument(arguments, "features") or "")
        room = match[1]
        try:
            identity = self._access.admit(room, credential, invite)
            if since is not None:
                self._hub.id_key(since)
        except (Unauthenticated, NotAdmitted, InvalidMessageId):
            raise LeftToTornado() from None
        url_credential = names_a_credential(arguments)
        no_store = url_credential or bool(credential or invite) or self._access.is_private(room)
        address = self._addresses.resolve(peer, headers)
        return Accepted(room, identity, address, since, features, no_store, url_credential)

    def _origin_allowed(self, headers: Headers) -> bool:
        """Tornado's cross-origin check of a WebSocket, with ``server.allowed_origins``."""
        fetch_site = headers.get("Sec-Fetch-Site")
        if fetch_site in ("same-origin", "none"):
            return True
        origin = headers.get("Origin")
        if fetch_site is not None:
            return origin is not None and origin != "" and self._site.allowed_origins.allow(origin)
        if origin is None:
            return True
        try:
            same_host = urlsplit(origin).netloc.lower() == headers.get("Host", "").lower()
        except ValueError:  # Tornado's check would fail on it: its answer is Tornado's to give
            return False
        return same_host or self._site.allowed_origins.allow(origin)

    def _switching(self, head: RequestHead, accepted: Accepted) -> bytes:
        accept = WebSocketProtocol13.compute_accept_value(head.headers["Sec-Websocket-Key"])
        return (
            f"HTTP/1.1 101 Switching Protocols\r\nDate: {_http_date(int(head.started))}\r\n{_SAFETY}"
            f"{NO_STORE if accepted.no_store else ''}Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-Websocket-Accept: {accept}\r\n{VARY}"
        ).encode("latin-1")

    def _refuse(self, stream: RequestStream, head: RequestHead, accepted: Accepted, status: int, reason: str) -> None:
        """An error answer as Tornado's handler writes it (its default error page), and its log line."""
        body = (
            f"<html><title>{status}: {xhtml_escape(reason)}</title><body>{status}: {xhtml_escape(reason)}</body></html>"
        )
        answer = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=UTF-8\r\n"
            f"Date: {_http_date(int(head.started))}\r\n{_SAFETY}{NO_STORE if accepted.url_credential else ''}"
            f"Content-Length: {len(body)}\r\n{VARY}{body}"
        )
        self._record(head, accepted, status, len(body))
        stream.write(answer.encode("latin-1"))

    def _record(self, head: RequestHead, accepted: Accepted, status: int, sent: int) -> None:
        seconds = time.time() - head.started
        self._log.record(
            ROUTE, head.method, status, seconds, head.uri, sent, accepted.address, head.headers.get("User-Agent", "")
        )


# An answer's Date changes once a second: formatted once for all the handshakes of that second.
@functools.lru_cache(maxsize=1)
def _http_date(second: int) -> str:
    return format_timestamp(second)


def _argument(arguments: dict[str, list[bytes]], name: str) -> str | None:
    """A query argument as Tornado's handler reads it (the last of its values), None if absent; one
    Tornado would change or refuse (not UTF-8, control characters, spaces around it) is Tornado's."""
    values = arguments.get(name)
    if not values:
        return None
    try:
        value = values[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise LeftToTornado() from None
    if CONTROL_CHARACTERS.search(value) or value != value.strip():
        raise LeftToTornado()
    return value


def _bearer(headers: Headers) -> str | None:
    """``bearer_credential``'s credential; a header it refuses (401) is Tornado's to answer."""
    header = headers.get("Authorization")
    if header is None:
        return None
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise LeftToTornado()
    return credential.strip()


def _raise_error(future: asyncio.Future[None]) -> None:
    future.result()  # an error let out: the loop logs it


def _run_until_it_waits(answer: Coroutine[Any, Any, None]) -> None:
    """Run ``answer`` here, without a Task, as far as it goes without waiting: a join to a room already
    subscribed to goes all the way, and a Task, its scheduling and its done callback cost more than the
    rest of the answer's coroutines. If it waits (for the room's subscription), the rest runs as a Task,
    begun once what it waits for is done, as a Task would have resumed it."""
    try:
        awaited = answer.send(None)
    except StopIteration:
        return
    if awaited is None:  # a bare yield: the Task goes on at the loop's next turn
        asyncio.ensure_future(answer).add_done_callback(_raise_error)
        return
    awaited._asyncio_future_blocking = False  # as a Task takes it
    awaited.add_done_callback(lambda _: asyncio.ensure_future(answer).add_done_callback(_raise_error))
