"""What a POST with a JSON body must be, whichever API route takes it: JSON (a foreign page cannot send
that without asking) and from an allowed origin. Its size is the server's to hold (``rooms.web.httpserver``:
over ``limits.max_frame_bytes``, 413 before it is read)."""

from __future__ import annotations

from typing import Any

from tornado.web import stream_request_body

from rooms.protocol import load_json
from rooms.web.handlers.base import JSONHandler
from rooms.web.origins import origin_matches_host


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
class JSONBodyHandler(JSONHandler):
    """Streamed, so that Tornado does not parse the body as a form first (a malformed multipart body
    would get its 400 rather than this handler's 415). The server hands a handler a request only once
    its body is read whole, within ``limits.max_frame_bytes``.

    A subclass's ``prepare`` calls ``check_post`` once it has checked what comes first (the room, who
    may enter it), and stops if that answered (``self._finished``)."""

    # A body may be left out altogether (and then its type need not be given): the default is meant.
    body_optional = False

    def prepare(self) -> None:
        self.chunks: list[bytes] = []

    def check_post(self) -> None:
        """Answer 403 or 415 (and so finish) if the POST is not one this server takes."""
        headers = self.request.headers
        origin = headers.get("Origin")
        if origin is not None and not (
            origin_matches_host(origin, self.request.host) or self.site.allowed_origins.allow(origin)
        ):
            # A browser names the page that made it post: a page elsewhere must not post as its visitors.
            return self.write_json({"error": f"posts from Origin {origin!r} are not allowed"}, 403)
        length = headers.get("Content-Length", "")
        empty = length == "0" or (not length and "Transfer-Encoding" not in headers)
        problem = json_content_type_problem(headers.get("Content-Type"))
        if problem is not None and not (self.body_optional and empty):
            return self.write_json({"error": problem}, 415)

    def data_received(self, chunk: bytes) -> None:
        if not self._finished:  # refused in prepare: the body is dropped
            self.chunks.append(chunk)

    def json_body(self, default: Any = None) -> Any:
        """The body, decoded (``ProtocolError`` if it is not JSON); ``default`` for no body at all."""
        body = b"".join(self.chunks)
        if not body and self.body_optional:
            return default
        return load_json(body)
