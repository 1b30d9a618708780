"""Which browser origins may open a socket or post (the server's own host, and ``server.allowed_origins``),
and which Host names the server answers to (``server.allowed_hosts``)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, without a trailing slash or path, or the scheme's own port."""
    parts = urlsplit(origin.strip().lower())
    if not (parts.scheme and parts.netloc):
        return origin.strip().lower()
    try:
        default_port = parts.port is not None and parts.port == DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port that is not a number: compared as written
        default_port = False
    netloc = parts.netloc.rsplit(":", 1)[0] if default_port else parts.netloc
    return f"{parts.scheme}://{netloc}"


def origin_matches_host(origin: str, host: str) -> bool:
    """Whether ``origin`` is the host the request was sent to, as Tornado's WebSocket check decides it:
    ``host[:port]`` alike, the scheme not compared (behind a TLS-terminating proxy it is not known here)."""
    return urlsplit(origin.strip()).netloc.lower() == host.strip().lower()


class AllowedOrigins:
    def __init__(self, listed: Iterable[str]) -> None:
        self._origins = frozenset(normalize_origin(origin) for origin in listed)

    def allow(self, origin: str) -> bool:
        return "*" in self._origins or normalize_origin(origin) in self._origins


def host_name(host: str) -> str:
    """A Host header or a configured name without its port, brackets or final dot, in lower case."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # name:port; more than one colon is a bare IPv6 address
        host = host.partition(":")[0]
    return host.rstrip(".")


class AllowedHosts:
    """The names the server answers to; none listed, any."""

    def __init__(self, listed: Iterable[str]) -> None:
        self._names = frozenset(host_name(name) for name in listed)

    def allow(self, host: str) -> bool:
        return not self._names or host_name(host) in self._names
