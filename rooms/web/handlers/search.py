"""``GET /api/rooms/<label>/search?q=<words>&limit=N&before=<id>``: the room's messages holding every word
of ``q``, newest first (docs/protocol.md), as ``{"room": ..., "messages": [...], "has_more": bool}``.

A private room answers as its other routes do (404 or 401 before anything else is looked at); a bad
argument answers 400 naming it, and an address past ``limits.searches_per_minute`` 429.
"""

from __future__ import annotations

import logging

from backends.errors import BackendUnavailable, InvalidMessageId
from rooms.errors import RateLimited
from rooms.protocol import message_payload
from rooms.web.handlers.audit import BadQuery, whole_number
from rooms.web.handlers.base import admit, bearer_credential, room_label
from rooms.web.handlers.json_body import JSONBodyHandler

MAX_QUERY_CHARS = 100
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
SHOWN_CHARS = 20  # of a bad value, in its error

log = logging.getLogger(__name__)


class SearchApiHandler(JSONBodyHandler):
    def prepare(self) -> None:
        super().prepare()
        if self.request.method == "GET":
            # Who may enter comes first: a room the request may not enter answers 404, whatever it asks.
            self.identity = admit(self, self.access, room_label(self.path_args[0]), bearer_credential(self))

    async def get(self, label: str) -> None:
        room = room_label(label)
        try:
            text = self._query_text()
            raw_limit = self.get_query_argument("limit", None)
            limit = DEFAULT_LIMIT if raw_limit is None else whole_number("limit", raw_limit, MAX_LIMIT)
        except BadQuery as exc:
            return self.write_json({"error": str(exc)}, 400)
        before = self.get_query_argument("before", None)
        try:
            address = self.request.remote_ip or ""
            page = await self.hub.search(room, text, limit, before, address)
        except InvalidMessageId:
            shown = before if before is None or len(before) <= SHOWN_CHARS else f"{before[:SHOWN_CHARS]}..."
            return self.write_json({"error": f"'before' is not a message id: {shown!r}"}, 400)
        except RateLimited as exc:
            return self.write_json({"error": str(exc)}, 429)
        except BackendUnavailable as exc:
            log.warning("search of %s not read: %s", room, exc)
            return self.write_json({"error": "storage unavailable"}, 503)
        self.write_json(
            {"room": room, "messages": [message_payload(m) for m in page.messages], "has_more": page.has_more}
        )

    def _query_text(self) -> str:
        # Not stripped: a space after the last word says it is whole (``SearchQuery.parse``).
        text = self.get_query_argument("q", None, strip=False)
        if text is None:
            raise BadQuery("'q' is required: the words to search for")
        if not 1 <= len(text) <= MAX_QUERY_CHARS:
            raise BadQuery(f"'q' must be 1 to {MAX_QUERY_CHARS} characters, not {len(text)}")
        return text
