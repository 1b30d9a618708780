"""One message of a room: ``PATCH`` edits it, ``DELETE`` deletes it (docs/protocol.md, "Messages that
change", and "Moderation").

A moderator of the room deletes any message (and the audit log keeps it); its author edits or deletes
its own, proving it with a token of the same ``sub`` (``Authorization: Bearer``) or its author key (the
body's ``author_key`` for an edit, the ``Author-Key`` header for a deletion). A request with neither
credential is refused with 401, as it was before messages had authors.
"""

from __future__ import annotations

import logging

from tornado.web import HTTPError

from backends.errors import BackendUnavailable
from rooms.access.identity import Identity
from rooms.change_frames import decode_edit
from rooms.errors import Forbidden, Unauthenticated
from rooms.protocol import ErrorCode, ProtocolError, key_author, message_payload
from rooms.web.handlers.base import admit, bearer_credential, not_found, room_label
from rooms.web.handlers.moderation import NEEDS_MODERATOR, ModeratorHandler

log = logging.getLogger(__name__)

AUTHOR_KEY_HEADER = "Author-Key"


class MessageHandler(ModeratorHandler):
    """``PATCH /api/rooms/<label>/messages/<id>``: 200 with the message as it now stands.
    ``DELETE``: 204. No such message (an id that is not one included): 404; not its author: 403."""

    label_args = 1

    def prepare(self) -> None:
        super().prepare()
        if self.request.method not in ("PATCH", "DELETE"):
            return
        room = room_label(self.path_args[0])
        credential = bearer_credential(self)
        self.as_moderator = False
        if credential and self.request.method == "DELETE":
            try:
                identity = self.access.identify(credential)
            except Unauthenticated as exc:
                raise HTTPError(401, reason=str(exc)) from None
            self.as_moderator = self.may_moderate(identity, room)
            if identity.moderator and not self.as_moderator:
                raise HTTPError(401, reason=NEEDS_MODERATOR.format(what="this room"))
        if not credential and self.request.method == "DELETE" and AUTHOR_KEY_HEADER not in self.request.headers:
            raise HTTPError(401, reason=NEEDS_MODERATOR.format(what="deleting another's message"))
        self.identity: Identity = admit(self, self.access, room, credential)
        if self.request.method == "PATCH":
            self.check_post()

    async def patch(self, label: str, message_id: str) -> None:
        room = room_label(label)
        address = self.hub.request_sender(self.request.remote_ip or "").address
        try:
            body = self.json_body()
            if not isinstance(body, dict):
                raise ProtocolError(ErrorCode.INVALID_MESSAGE, "the body must be a JSON object")
            edit = decode_edit(body, self.site.limits, message_id)
            message = await self.hub.edit(room, edit.id, edit.message, edit.author, self.identity, address)
        except ProtocolError as exc:
            return self._refused(exc)
        except Forbidden as exc:
            return self.write_json({"error": str(exc)}, 403)
        except BackendUnavailable as exc:
            return self.storage_unavailable(f"editing a message of {room}", exc)
        self.write_json(message_payload(message))

    async def delete(self, label: str, message_id: str) -> None:
        room = room_label(label)
        try:
            if self.as_moderator:
                if not await self.hub.delete_message(room, message_id, self.identity):
                    raise not_found()
            else:
                header = self.request.headers.get(AUTHOR_KEY_HEADER)
                key = None if header is None else key_author(header)
                address = self.hub.request_sender(self.request.remote_ip or "").address
                await self.hub.delete_own(room, message_id, key, self.identity, address)
        except ProtocolError as exc:
            return self._refused(exc)
        except Forbidden as exc:
            return self.write_json({"error": str(exc)}, 403)
        except BackendUnavailable as exc:
            return self.storage_unavailable(f"deleting a message of {room}", exc)
        self.set_status(204)
        self.finish()

    def _refused(self, exc: ProtocolError) -> None:
        self.write_json({"error": exc.reason}, 404 if exc.code is ErrorCode.NOT_FOUND else 400)
