"""``GET /api/audit?limit=N&before=<id>``: the moderators' audit log, newest first (docs/moderation.md).

A moderator sees the entries of the rooms they moderate: every entry, for a moderator of every room. The
answer is ``{"audit": [entry, ...], "next": <id> or null}``; ``next`` is the ``before`` that reads the
following (older) page, and null when there is none.
"""

from __future__ import annotations

from typing import Any

from backends.audit import AuditEntry
from backends.errors import BackendUnavailable
from rooms.web.handlers.moderation import ModeratorHandler

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Entry ids are positive and fit a signed 64-bit integer (SQL's BIGINT) on every backend.
MAX_ENTRY_ID = 2**63 - 1
SHOWN_CHARS = 20  # of a bad value, in its error


class BadQuery(Exception):
    """A query argument the route does not take; the message says why (400)."""


def audit_payload(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the API shows it: its fields, then the action's own details (``message_id``; ``ban_id``,
    ``handle``, ``address``, ``seconds``; ``seconds`` and ``expires`` of an invite)."""
    return {
        "id": entry.id,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "room": entry.room,
        "reason": entry.reason,
        **entry.details,
    }


def whole_number(name: str, raw: str, highest: int) -> int:
    """``raw`` as a whole number from 1 to ``highest``; ``BadQuery`` otherwise. Its length is checked
    before ``int()``, which refuses a number of over 4300 digits."""
    digits = raw.lstrip("0") if raw.isascii() and raw.isdigit() else ""
    if digits and len(digits) <= len(str(highest)) and int(digits) <= highest:
        return int(digits)
    shown = raw if len(raw) <= SHOWN_CHARS else f"{raw[:SHOWN_CHARS]}..."
    raise BadQuery(f"'{name}' must be a whole number from 1 to {highest}, not {shown!r}")


class AuditApiHandler(ModeratorHandler):
    def prepare(self) -> None:
        super().prepare()
        if self.request.method == "GET":
            self.identity = self.moderator()

    async def get(self) -> None:
        try:
            raw_limit = self.get_query_argument("limit", None)
            limit = DEFAULT_LIMIT if raw_limit is None else whole_number("limit", raw_limit, MAX_LIMIT)
            raw_before = self.get_query_argument("before", None)
            before = None if raw_before is None else whole_number("before", raw_before, MAX_ENTRY_ID)
        except BadQuery as exc:
            return self.write_json({"error": str(exc)}, 400)
        try:
            entries, following = await self.hub.audit_page(
                limit, before, lambda room: self.may_moderate(self.identity, room)
            )
        except BackendUnavailable as exc:
            return self.storage_unavailable("reading the audit log", exc)
        self.write_json({"audit": [audit_payload(entry) for entry in entries], "next": following})
