"""The moderation API (docs/protocol.md, "Moderation"): bans, room locks (and, in ``message``, deletions).

Every route takes a moderator's credential in ``Authorization: Bearer``: a token of ``moderation.tokens``
(every room), or a signed token with ``mod: true`` (the rooms it covers). Without one that moderates
what the request is about — none, a bad one, a user's, a moderator's of other rooms — the answer is
401, the same whether the room is private or not, so a 401 tells nothing of it. A ban of every room
takes a moderator of every room; a ban of one room, a moderator of that room.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from tornado.web import HTTPError

from backends.base import Ban
from backends.errors import BackendUnavailable
from rooms.access.addresses import ban_key
from rooms.access.identity import Identity
from rooms.errors import Unauthenticated
from rooms.protocol import Limits, ProtocolError, ban_payload, check_handle, is_valid_label
from rooms.web.handlers.base import admit, bearer_credential, not_found, room_label
from rooms.web.handlers.json_body import JSONBodyHandler

log = logging.getLogger(__name__)

MAX_BAN_SECONDS = 10 * 365 * 86400
MAX_REASON_CHARS = 500
_BAN_FIELDS = frozenset({"handle", "address", "room", "seconds", "reason"})
# Controls (C0 and C1) and unpaired surrogates: a reason is one line of text, storable everywhere.
_NOT_IN_REASON = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
NEEDS_MODERATOR = "this takes a moderator's token (Authorization: Bearer) for {what}"


class BadRequest(Exception):
    """A body the route does not take; the message says why (400)."""


class ModeratorHandler(JSONBodyHandler):
    """What every moderation route shares: who the moderator is, and answers no cache may keep."""

    def prepare(self) -> None:
        super().prepare()
        # Bans name addresses; every answer here is for this moderator only.
        self.set_header("Cache-Control", "no-store")

    # How many of the route's path arguments, from the first, are room labels (not a ban's or message's id).
    label_args = 0

    def options(self, *args: str) -> None:
        super().options(*args[: self.label_args])

    def moderator(self) -> Identity:
        """Who the request is, if a moderator of some room; else 401."""
        try:
            identity = self.access.identify(bearer_credential(self))
        except Unauthenticated as exc:
            raise HTTPError(401, reason=str(exc)) from None
        if not identity.moderator:
            raise HTTPError(401, reason=NEEDS_MODERATOR.format(what="moderation"))
        return identity

    def may_moderate(self, identity: Identity, room: str | None) -> bool:
        """Whether ``identity`` moderates ``room`` (None: every room)."""
        if room is None:
            return self.access.moderates_every_room(identity)
        return self.access.moderates(identity, room)

    def require(self, room: str | None) -> Identity:
        """The moderator of ``room`` (None: of every room) the request is; else 401."""
        identity = self.moderator()
        if not self.may_moderate(identity, room):
            what = "every room" if room is None else "this room"
            raise HTTPError(401, reason=NEEDS_MODERATOR.format(what=what))
        return identity

    def storage_unavailable(self, action: str, exc: BackendUnavailable) -> None:
        log.warning("%s failed: %s", action, exc)
        self.write_json({"error": "storage unavailable"}, 503)

    def json_object(self) -> dict[str, Any]:
        """The body, a JSON object; ``BadRequest`` otherwise."""
        try:
            body = self.json_body()
        except ProtocolError as exc:
            raise BadRequest(exc.reason) from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body


class RoomApiHandler(ModeratorHandler):
    """``PATCH /api/rooms/<label>`` with ``{"locked": true|false}``: 200 ``{"room", "locked"}``. ``GET``
    answers the same to anyone who may enter the room (the page shows whether it is locked)."""

    label_args = 1

    def prepare(self) -> None:
        super().prepare()
        if self.request.method == "GET":
            self.identity = admit(self, self.access, room_label(self.path_args[0]), bearer_credential(self))
        elif self.request.method == "PATCH":
            self.identity = self.require(room_label(self.path_args[0]))
            self.check_post()

    def get(self, label: str) -> None:
        room = room_label(label)
        self.write_json({"room": room, "locked": self.hub.is_locked(room)})

    async def patch(self, label: str) -> None:
        room = room_label(label)
        try:
            body = self.json_object()
            unknown = sorted(set(body) - {"locked"})
            if unknown:
                raise BadRequest(f'unknown field {unknown[0]!r}: the body is {{"locked": true}} or {{"locked": false}}')
            if not isinstance(body.get("locked"), bool):
                raise BadRequest("field 'locked' must be true or false, e.g. {\"locked\": true}")
        except BadRequest as exc:
            return self.write_json({"error": str(exc)}, 400)
        try:
            await self.hub.set_locked(room, body["locked"], self.identity)
        except BackendUnavailable as exc:
            return self.storage_unavailable(f"locking {room}", exc)
        self.write_json({"room": room, "locked": body["locked"]})


@dataclass(frozen=True, slots=True)
class BanRequest:
    handle: str | None
    address: str | None
    room: str | None
    seconds: int | None
    reason: str


def decode_ban(body: dict[str, Any], limits: Limits) -> BanRequest:
    """What ``POST /api/bans`` asks for, checked; ``BadRequest`` saying what is wrong otherwise."""
    unknown = sorted(set(body) - _BAN_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}: a ban takes {', '.join(sorted(_BAN_FIELDS))}")
    handle, address = body.get("handle"), body.get("address")
    if (handle is None) == (address is None):
        raise BadRequest("a ban names exactly one of 'handle' and 'address'")
    if handle is not None:
        if not isinstance(handle, str):
            raise BadRequest("field 'handle' must be a string")
        try:
            handle = check_handle(handle, limits.max_handle_chars)
        except ProtocolError as exc:
            raise BadRequest(exc.reason) from None
    if address is not None:
        if not isinstance(address, str):
            raise BadRequest("field 'address' must be a string: an IP address or a CIDR range")
        try:
            address = ban_key(address)
        except ValueError as exc:
            raise BadRequest(f"field 'address': {exc}") from None
    room = body.get("room")
    if room is not None and not (isinstance(room, str) and is_valid_label(room)):
        raise BadRequest("field 'room' must be a room's label (or left out: every room)")
    seconds = body.get("seconds")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= MAX_BAN_SECONDS
    ):
        raise BadRequest(
            f"field 'seconds' must be a whole number from 1 to {MAX_BAN_SECONDS} (ten years), or left out: until lifted"
        )
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise BadRequest("field 'reason' must be a string")
    reason = unicodedata.normalize("NFC", reason.strip())
    if len(reason) > MAX_REASON_CHARS:
        raise BadRequest(f"field 'reason' is longer than {MAX_REASON_CHARS} characters")
    if _NOT_IN_REASON.search(reason):
        raise BadRequest("field 'reason' must not contain control characters")
    return BanRequest(handle, address, room, seconds, reason)


class BansApiHandler(ModeratorHandler):
    """``GET /api/bans``: the bans in force that this moderator may lift (every one, for a moderator of
    every room). ``POST /api/bans``: 201 with the ban."""

    def prepare(self) -> None:
        super().prepare()
        if self.request.method == "GET":
            self.identity = self.moderator()
        elif self.request.method == "POST":
            # Whose ban it may be is in the body: a moderator of some room comes this far.
            self.identity = self.moderator()
            self.check_post()

    async def get(self) -> None:
        try:
            bans = await self.hub.bans()
        except BackendUnavailable as exc:
            return self.storage_unavailable("reading bans", exc)
        shown = [ban_payload(ban) for ban in bans if self.may_moderate(self.identity, ban.room)]
        self.write_json({"bans": shown})

    async def post(self) -> None:
        try:
            request = decode_ban(self.json_object(), self.site.limits)
        except BadRequest as exc:
            return self.write_json({"error": str(exc)}, 400)
        if not self.may_moderate(self.identity, request.room):
            what = "every room" if request.room is None else "this room"
            raise HTTPError(401, reason=NEEDS_MODERATOR.format(what=what))
        try:
            ban = await self.hub.ban(
                request.handle, request.address, request.room, request.seconds, request.reason, self.identity
            )
        except BackendUnavailable as exc:
            return self.storage_unavailable("a ban", exc)
        self.write_json(ban_payload(ban), 201)


class BanApiHandler(ModeratorHandler):
    """``DELETE /api/bans/<id>``: 204; 404 for a ban not in force, or one this moderator may not lift
    (which its ``GET /api/bans`` does not show either)."""

    def prepare(self) -> None:
        super().prepare()
        if self.request.method == "DELETE":
            self.identity = self.moderator()

    async def delete(self, ban_id: str) -> None:
        try:
            ban = self._find(await self.hub.bans(), ban_id)
            if ban is None or not self.may_moderate(self.identity, ban.room):
                raise not_found()
            lifted = await self.hub.lift_ban(ban, self.identity)
        except BackendUnavailable as exc:
            return self.storage_unavailable("lifting a ban", exc)
        if not lifted:  # lifted or expired meanwhile
            raise not_found()
        self.set_status(204)
        self.finish()

    @staticmethod
    def _find(bans: list[Ban], ban_id: str) -> Ban | None:
        return next((ban for ban in bans if ban.id == ban_id), None)
