"""What a POST with a JSON body must be, whichever API route takes it: JSON (a foreign page cannot send
that without asking), from an allowed origin, and no bigger than ``limits.max_frame_bytes``, refused
before it is read."""

from __future__ import annotations

from typing import Any

from tornado.web import stream_request_body

from rooms.handlers.base import JSONHandler
from rooms.origins import origin_matches_host
from rooms.protocol import load_json


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
    """Streamed, so that a POST body over ``limits.max_frame_bytes`` is refused before it is read: Tornado
    would otherwise read a body of any announced size (up to 100 MB) before ``post`` could look at it.

    A subclass's ``prepare`` calls ``check_post`` once it has checked what comes first (the room, who
    may enter it), and stops if that answered (``self._finished``)."""

    # A body may be left out altogether (and then its type need not be given): the default is meant.
    body_optional = False

    def prepare(self) -> None:
        self.chunks: list[bytes] = []
        self.received = 0

    def check_post(self) -> None:
        """Answer 403, 415 or 413 (and so finish) if the POST is not one this server takes."""
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

    def json_body(self, default: Any = None) -> Any:
        """The body, decoded (``ProtocolError`` if it is not JSON); ``default`` for no body at all."""
        body = b"".join(self.chunks)
        if not body and self.body_optional:
            return default
        return load_json(body)
