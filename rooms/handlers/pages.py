"""The HTML pages: home, a new random room, the room page, static files."""

from __future__ import annotations

import os

from tornado.web import HTTPError, StaticFileHandler

from backends.errors import BackendUnavailable
from rooms.handlers.base import RoomsHandler, SafeHeaders, room_label
from rooms.protocol import is_valid_label
from rooms.wordlist import random_label


class HomeHandler(RoomsHandler):
    async def get(self) -> None:
        # The open-a-room form submits here as ?room=<label> where the page's script does not run.
        typed = self.get_query_argument("room", None)
        if typed is not None and is_valid_label(typed):
            return self.redirect(f"/{typed}/", status=302)
        if typed is not None:
            self.set_status(400)
        try:
            busiest = await self.hub.busiest_rooms()
        except BackendUnavailable:
            busiest = []
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


class StaticFiles(SafeHeaders, StaticFileHandler):
    """Static files, with 404 (not Tornado's 403) for a directory such as ``/static/``: nothing is there."""

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        if os.path.isdir(absolute_path):
            raise HTTPError(404)
        return super().validate_absolute_path(root, absolute_path)
