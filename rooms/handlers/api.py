"""The JSON API (a room's messages), health and metrics."""

from __future__ import annotations

import logging

from tornado.web import HTTPError, stream_request_body

from backends.errors import BackendUnavailable, InvalidMessageId, MessageDeleted, QuotaExceeded
from rooms.errors import RateLimited, ShuttingDown
from rooms.handlers.base import JSONHandler, RoomsHandler, not_found, room_label
from rooms.origins import origin_matches_host
from rooms.protocol import ProtocolError, load_json, message_payload, validate_client_object

MAX_API_LIMIT = 200

log = logging.getLogger(__name__)


def json_content_type_problem(content_type: str | None) -> str | None:
    """Why a POST's ``Content-Type`` is refused, or None for ``application/json`` (charset utf-8 at most).

    A foreign page can make its visitors' browsers send a form or ``text/plain`` anywhere without asking
    (a CORS "simple" request); ``application/json`` it cannot send cross-origin without a preflight,
    which this server never approves. So JSON sent as anything else is refused, not parsed anyway.
    """
    media_type, *parameters = (content_type or "").split(";")
    if media_type.strip().lower() != "application/json":
        return f"Content-Type must be application/json, not {content_type or 'missing'!r}"
    for parameter in filter(str.strip, parameters):
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return f"Content-Type: application/json takes only charset=utf-8, not {parameter.strip()!r}"
    return None


@stream_request_body
class MessagesApiHandler(JSONHandler):
    """Streamed, so that a POST body over ``limits.max_frame_bytes`` is refused before it is read: Tornado
    would otherwise read a body of any announced size (up to 100 MB) before ``post`` could look at it."""

    def prepare(self) -> None:
        self.chunks: list[bytes] = []
        self.received = 0
        if self.request.method != "POST":
            return
        room_label(self.path_args[0])
        headers = self.request.headers
        origin = headers.get("Origin")
        if origin is not None and not (
            origin_matches_host(origin, self.request.host) or self.site.allowed_origins.allow(origin)
        ):
            # A browser names the page that made it post: a page elsewhere must not post as its visitors.
            return self.write_json({"error": f"posts from Origin {origin!r} are not allowed"}, 403)
        problem = json_content_type_problem(headers.get("Content-Type"))
        if problem is not None:
            return self.write_json({"error": problem}, 415)
        length = headers.get("Content-Length", "")
        if length.isascii() and length.isdigit() and int(length) > self.site.max_frame_bytes:
            self._refuse_too_large()

    def data_received(self, chunk: bytes) -> None:
        if self._finished:  # refused: what still arrives before the connection closes is dropped
            return
        self.received += len(chunk)
        if self.received > self.site.max_frame_bytes:  # a chunked body, which announces no length
            self._refuse_too_large()
            return
        self.chunks.append(chunk)

    def _refuse_too_large(self) -> None:
        # The rest of the body is never read: the connection is closed once this answer is out.
        self.set_header("Connection", "close")
        limit = self.site.max_frame_bytes
        self.write_json({"error": f"request body too large: over {limit} bytes"}, 413)

    async def get(self, label: str) -> None:
        room = room_label(label)
        limit = self._limit()
        before = self.get_query_argument("before", None)
        after = self.get_query_argument("after", None)
        if before is not None and after is not None:
            return self.write_json({"error": "give 'before' or 'after', not both"}, 400)
        try:
            page = await self.hub.history(room, limit, before, after)
        except InvalidMessageId:
            name, value = ("before", before) if before is not None else ("after", after)
            return self.write_json({"error": f"'{name}' is not a message id: {value!r}"}, 400)
        except BackendUnavailable as exc:
            log.warning("history of %s not read: %s", room, exc)
            return self.write_json({"error": "storage unavailable"}, 503)
        self.write_json(
            {"room": room, "messages": [message_payload(m) for m in page.messages], "has_more": page.has_more}
        )

    def _limit(self) -> int:
        raw = self.get_query_argument("limit", None)
        if raw is None:
            return self.hub.page_size
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_API_LIMIT:
            raise HTTPError(400, reason=f"'limit' must be a whole number from 1 to {MAX_API_LIMIT}, not {raw!r}")
        return int(raw)

    async def post(self, label: str) -> None:
        room = room_label(label)
        try:
            sender = self.hub.rates.for_request(self.request.remote_ip or "")
            message = validate_client_object(load_json(b"".join(self.chunks)), room, self.site.limits, sender.address)
            result = await self.hub.post(message, sender)
        except ProtocolError as exc:
            return self.write_json({"error": exc.reason}, 400)
        except (RateLimited, QuotaExceeded) as exc:
            return self.write_json({"error": str(exc)}, 429)
        except MessageDeleted as exc:
            return self.write_json({"error": str(exc)}, 403)
        except ShuttingDown as exc:
            return self.write_json({"error": str(exc)}, 503)
        except BackendUnavailable as exc:
            log.warning("message to %s not stored: %s", room, exc)
            return self.write_json({"error": "not stored, storage unavailable"}, 503)
        if result.duplicate:
            # The answer the first request had, as idempotency keys elsewhere do, marked as a replay.
            self.set_header("Idempotent-Replayed", "true")
        self.write_encoded(self.hub.encoded(result.message), 201)


class HealthHandler(JSONHandler):
    async def get(self) -> None:
        kind = self.hub.backend_kind
        try:
            await self.hub.health()
        except BackendUnavailable as exc:
            # The reason names the store's address and what went wrong: for the operator's log, not for
            # anyone who can reach /healthz.
            log.warning("health check: the %s backend is unavailable: %s", kind, exc)
            return self.write_json({"status": "unavailable", "backend": kind}, 503)
        self.write_json({"status": "ok", "backend": kind})

    head = get  # uptime monitors often ask with HEAD


class MetricsHandler(RoomsHandler):
    def prepare(self) -> None:
        # Room names and traffic are the operator's business; to anyone else the route does not exist.
        if self.request.remote_ip not in self.site.metrics_allowed:
            raise not_found()

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.hub.metrics.exposition())
