"""What every HTTP handler shares: its dependencies, room labels, error pages, ``OPTIONS`` and the
headers every response carries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from http.client import responses
from typing import Any

from tornado.httputil import HTTPServerRequest
from tornado.web import HTTPError, RequestHandler

from backends.token_bucket import TokenBucket
from rooms.access.addresses import AddressList
from rooms.access.identity import ANONYMOUS, Identity
from rooms.access.policy import AccessPolicy
from rooms.errors import NotAdmitted, Unauthenticated
from rooms.protocol import Limits, encode, is_valid_label
from rooms.room.hub import RoomHub
from rooms.service.logmask import CREDENTIAL_PARAMETERS
from rooms.web.keepalive import Keepalive
from rooms.web.origins import AllowedOrigins

# Methods a handler may implement, in the order ``Allow`` lists them.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

# The pages load nothing but their own files, run no inline script, cannot be framed (clickjacking)
# and send forms and sockets only home; so even markup that slipped through escaping would do nothing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# On every response, not only the pages: they cost a few bytes where they do nothing, and so an error,
# a redirect or a page added later cannot go out without them. nosniff keeps a browser from running JSON
# or a text/plain answer as a script or a page.
SAFETY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class SiteOptions:
    """The settings handlers read, flattened once so the hot path does no config lookups."""

    limits: Limits
    max_frame_bytes: int
    burst: int
    send_buffer_bytes: int
    allowed_origins: AllowedOrigins
    metrics_allowed: AddressList
    keepalive: Keepalive | None
    frames_per_second: float
    frames_burst: int

    def frame_budget(self) -> TokenBucket:
        """A socket's bucket for the frames it sends, of every kind."""
        return TokenBucket(self.frames_per_second, self.frames_burst)


def allowed_methods(handler: RequestHandler) -> str:
    """The ``Allow`` header of a route: the methods its handler implements, and OPTIONS."""
    implemented = [m for m in _METHODS if getattr(type(handler), m.lower()) is not getattr(RequestHandler, m.lower())]
    return ", ".join([*implemented, "OPTIONS"])


def carries_url_credential(request: HTTPServerRequest) -> bool:
    """Whether the URL holds a ``?token=`` or an ``?invite=``, however it was percent-encoded (the names
    are compared decoded, as the handlers read them)."""
    return names_a_credential(request.query_arguments)


def names_a_credential(query_names: Iterable[str]) -> bool:
    return any(name.lower() in CREDENTIAL_PARAMETERS for name in query_names)


def room_label(label: str) -> str:
    if not is_valid_label(label):
        raise not_found()
    return label


def bearer_credential(handler: RequestHandler) -> str | None:
    """The credential of ``Authorization: Bearer <token>``, None without the header; any other scheme
    is refused (401) rather than ignored, as the client meant it to count."""
    header = handler.request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise HTTPError(401, reason="Authorization takes a token as: Bearer <token>")
    return credential.strip()


def admit(handler: RequestHandler, access: AccessPolicy, room: str, credential: str | None) -> Identity:
    """Who the request is, if it may enter ``room`` (with the credential it brought, and an ``?invite=``);
    else 401 (a credential needed, or a bad one) or the very 404 of a route that is not there."""
    invite = handler.get_query_argument("invite", None)
    try:
        identity = access.admit(room, credential, invite)
    except Unauthenticated as exc:
        raise HTTPError(401, reason=str(exc)) from None
    except NotAdmitted:
        raise not_found() from None
    if credential or invite or access.is_private(room):
        # An answer for this visitor only: no cache on the way may keep it for the next one.
        handler.set_header("Cache-Control", "no-store")
    return identity


def error_text(status_code: int, **kwargs: Any) -> str:
    """What an error answer says: the ``HTTPError``'s own reason, else the status's name. Not the reason
    Tornado keeps for the status line, which it replaces with "Unknown" when the text holds a ``<`` or
    anything beyond Latin-1."""
    error = kwargs["exc_info"][1] if "exc_info" in kwargs else None
    if isinstance(error, HTTPError) and error.reason:
        return str(error.reason)
    return responses.get(status_code, "Error")


class SafeHeaders(RequestHandler):
    """The headers of every response, whichever handler sends it (pages, API, static files, the socket's
    handshake, errors), and no ``Server`` header: naming Tornado and its version only helps someone
    looking for servers with a known hole. ``clear()`` calls this, so an error answer keeps them too.

    An answer to a URL that carries a credential is for its sender only, whatever it is (a redirect
    repeats the URL in ``Location``): no cache on the way may keep it."""

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        for name, value in SAFETY_HEADERS.items():
            self.set_header(name, value)
        if carries_url_credential(self.request):
            self.set_header("Cache-Control", "no-store")


class RoomsHandler(SafeHeaders):
    """Dependencies come through the route: the room layer, the site's options and who may enter where."""

    def initialize(self, hub: RoomHub, site: SiteOptions, access: AccessPolicy) -> None:
        self.hub = hub
        self.site = site
        self.access = access
        self.identity: Identity = ANONYMOUS  # until ``admit`` says who the request is

    def options(self, *labels: str) -> None:
        for label in labels:  # every route's path arguments are room labels
            room_label(label)
        self.set_header("Allow", allowed_methods(self))
        self.set_status(204)
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 401:
            self.render("signin.html", reason=error_text(status_code, **kwargs))
            return
        self.render("error.html", status_code=status_code, reason=error_text(status_code, **kwargs))


class NotFoundHandler(RoomsHandler):
    def prepare(self) -> None:
        raise not_found()


class UnknownHostHandler(RoomsHandler):
    """Every request whose Host is not one of ``server.allowed_hosts``. A page served under a name the
    site does not own is one a DNS-rebinding attacker's name points here, with the attacker's origin: it
    could read the answers and speak to the socket as a same-origin page."""

    def prepare(self) -> None:
        raise HTTPError(400, reason="Unknown host")


def not_found() -> HTTPError:
    """What any unknown route answers; a route that is not for everyone answers it too, telling nothing."""
    return HTTPError(404, reason="Not found")


class JSONHandler(RoomsHandler):
    def write_json(self, payload: dict[str, Any], status: int = 200) -> None:
        self.write_encoded(encode(payload), status)

    def write_encoded(self, json_text: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json_text)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 401:
            # RFC 6750: how to authenticate, and that the token sent (if any) did not do.
            sent = self.request.headers.get("Authorization") is not None
            self.set_header("WWW-Authenticate", 'Bearer realm="rooms"' + (', error="invalid_token"' if sent else ""))
        self.write_json({"error": error_text(status_code, **kwargs)}, status_code)


class ApiNotFoundHandler(JSONHandler):
    """Any other path under ``/api/``: an API client gets its 404 as JSON, as every API route answers."""

    def prepare(self) -> None:
        raise not_found()
