"""The JSON API (a room's messages), health and metrics."""

from __future__ import annotations

import logging

from tornado.web import HTTPError

from backends.errors import BackendUnavailable, InvalidMessageId, MessageDeleted, QuotaExceeded, ReplyToMissing
from rooms.errors import Forbidden, RateLimited, ShuttingDown
from rooms.protocol import ProtocolError, message_payload, validate_client_object
from rooms.web.handlers.base import JSONHandler, RoomsHandler, admit, bearer_credential, not_found, room_label
from rooms.web.handlers.json_body import JSONBodyHandler

MAX_API_LIMIT = 200
MAX_LIMIT_DIGITS = len(str(MAX_API_LIMIT))
SHOWN_CHARS = 20  # of a bad value, in its error

log = logging.getLogger(__name__)


def _small_whole_number(text: str) -> int | None:
    """``text`` as a whole number of at most ``MAX_LIMIT_DIGITS`` digits, else None: its length is
    checked first, as int() refuses a number of over 4300 digits (a ValueError, which would be a 500)."""
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0")
    return int(digits or "0") if len(digits) <= MAX_LIMIT_DIGITS else None


class MessagesApiHandler(JSONBodyHandler):
    """A room's history (GET) and a message to it (POST), as the token in ``Authorization: Bearer``
    (and an ``?invite=``) let the request in."""

    def prepare(self) -> None:
        super().prepare()
        if self.request.method not in ("GET", "POST"):
            return
        # Who may enter comes first: a room the request may not enter answers 404, whatever else it holds.
        self.identity = admit(self, self.access, room_label(self.path_args[0]), bearer_credential(self))
        if self.request.method == "POST":
            self.check_post()

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
        limit = _small_whole_number(raw)
        if limit is None or not 1 <= limit <= MAX_API_LIMIT:
            shown = raw if len(raw) <= SHOWN_CHARS else f"{raw[:SHOWN_CHARS]}..."
            raise HTTPError(400, reason=f"'limit' must be a whole number from 1 to {MAX_API_LIMIT}, not {shown!r}")
        return limit

    async def post(self, label: str) -> None:
        room = room_label(label)
        try:
            sender = self.hub.request_sender(self.request.remote_ip or "")
            message = validate_client_object(self.json_body(), room, self.site.limits, sender.address)
            result = await self.hub.post(message, sender, self.identity)
        except ProtocolError as exc:
            return self.write_json({"error": exc.reason}, 400)
        except ReplyToMissing as exc:
            return self.write_json({"error": f"field 'reply_to': {exc}"}, 400)
        except (RateLimited, QuotaExceeded) as exc:
            return self.write_json({"error": str(exc)}, 429)
        except (MessageDeleted, Forbidden) as exc:
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

    async def get(self) -> None:
        # rooms_backend_up is as fresh as the scrape: the backend is asked as /healthz asks it.
        try:
            await self.hub.health()
        except BackendUnavailable as exc:
            log.debug("metrics: the %s backend is unavailable: %s", self.hub.backend_kind, exc)
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.hub.metrics_exposition())
