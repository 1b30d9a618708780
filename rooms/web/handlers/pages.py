"""The HTML pages: home, a new random room, the room page, static files."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from tornado.web import HTTPError, StaticFileHandler

from backends.base import RoomSummary
from backends.errors import BackendUnavailable
from rooms.protocol import is_valid_label
from rooms.web.handlers.base import RoomsHandler, SafeHeaders, admit, carries_url_credential, room_label
from rooms.web.wordlist import random_label


class HomeHandler(RoomsHandler):
    async def get(self) -> None:
        # The open-a-room form submits here as ?room=<label> where the page's script does not run.
        typed = self.get_query_argument("room", None)
        if typed is not None and is_valid_label(typed):
            return self.redirect(f"/{typed}/", status=302)
        if typed is not None:
            self.set_status(400)
        busiest: list[RoomSummary] = []
        # In token mode the rooms are for signed-in users: their names are not shown to everyone.
        if not self.access.token_mode:
            try:
                busiest = await self.hub.busiest_rooms()
            except BackendUnavailable:
                pass
        self.render("home.html", busiest=busiest, online=self.hub.online, typed=typed)

    head = get


class NewRoomHandler(RoomsHandler):
    def get(self) -> None:
        self.redirect(f"/{random_label()}/", status=302)


class RoomRedirectHandler(RoomsHandler):
    def get(self, label: str) -> None:
        query = f"?{self.request.query}" if self.request.query else ""
        self.redirect(f"/{room_label(label)}/{query}", permanent=True)


class RoomPageHandler(RoomsHandler):
    async def get(self, label: str) -> None:
        room = room_label(label)
        # The page's script keeps ?token= and ?invite= for the tab (static/room/access.js); the page
        # itself never shows them.
        self.identity = admit(self, self.access, room, self.get_query_argument("token", None))
        try:
            page = await self.hub.page(room)
        except BackendUnavailable as exc:
            raise HTTPError(503, reason="Storage unavailable", log_message=str(exc)) from None
        newest_id = page.messages[-1].id if page.messages else "0"
        self.render(
            "room.html",
            room=room,
            messages=page.messages,
            newest_id=newest_id,
            has_more=page.has_more,  # whether the page's script can scroll back to older messages
            limits=self.site.limits,
        )

    head = get

    def get_template_namespace(self) -> dict[str, Any]:
        # The name a token gives the reader: the page shows it in the name field, which it cannot change
        # (the server would send under that name anyway).
        namespace = super().get_template_namespace()
        namespace["signed_in_as"] = self.identity.name
        return namespace


class StaticFiles(SafeHeaders, StaticFileHandler):
    """Static files, with 404 (not Tornado's 403) for a directory such as ``/static/``, and for a path no
    file can have (``%00``, which the file system calls would refuse with a ValueError): nothing is there."""

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        if "\x00" in absolute_path or os.path.isdir(absolute_path):
            raise HTTPError(404)
        return super().validate_absolute_path(root, absolute_path)

    def get_cache_time(self, path: str, modified: datetime | None, mime_type: str) -> int:
        # Else a versioned file's Cache-Control (max-age) would replace the no-store of a URL credential.
        return 0 if carries_url_credential(self.request) else super().get_cache_time(path, modified, mime_type)
