"""``POST /api/rooms/<label>/invites``: a moderator makes a link that lets its holder into one room."""

from __future__ import annotations

from tornado.web import HTTPError

from rooms.access.invites import DEFAULT_SECONDS, MAX_SECONDS
from rooms.errors import Unauthenticated
from rooms.protocol import ProtocolError
from rooms.web.handlers.base import bearer_credential, room_label
from rooms.web.handlers.json_body import JSONBodyHandler


class InvitesApiHandler(JSONBodyHandler):
    # ``curl -X POST -H "Authorization: Bearer ..."`` with no body makes an invite for a week. The
    # moderator's token in a header is what no foreign page can send, so the JSON rule is not needed
    # for an empty body.
    body_optional = True

    def prepare(self) -> None:
        super().prepare()
        if self.request.method != "POST":
            return
        room = room_label(self.path_args[0])
        try:
            identity = self.access.identify(bearer_credential(self))
        except Unauthenticated as exc:
            raise HTTPError(401, reason=str(exc)) from None
        # Every room answers the same without a moderator, private or not: a 401 tells nothing of it.
        if not self.access.moderates(identity, room):
            raise HTTPError(401, reason="making an invite takes a moderator's token (Authorization: Bearer)")
        self.identity = identity
        self.check_post()

    async def post(self, label: str) -> None:
        room = room_label(label)
        try:
            body = self.json_body(default={})
        except ProtocolError as exc:
            return self.write_json({"error": exc.reason}, 400)
        if not isinstance(body, dict):
            return self.write_json({"error": 'the body must be a JSON object, e.g. {"seconds": 86400}'}, 400)
        seconds = body.get("seconds", DEFAULT_SECONDS)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= MAX_SECONDS:
            return self.write_json(
                {"error": f"field 'seconds' must be a whole number from 1 to {MAX_SECONDS} (90 days)"}, 400
            )
        invite = self.access.invite(room, seconds)
        expires = invite.expires.isoformat()
        await self.hub.invited(room, seconds, expires, self.identity)
        self.set_header("Cache-Control", "no-store")
        self.write_json({"url": f"/{room}/?invite={invite.code}", "expires": expires}, 201)
