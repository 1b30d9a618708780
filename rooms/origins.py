"""Which browser origins may open a socket: the server's own host, and ``server.allowed_origins``."""

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


class AllowedOrigins:
    def __init__(self, listed: Iterable[str]) -> None:
        self._origins = frozenset(normalize_origin(origin) for origin in listed)

    def allow(self, origin: str) -> bool:
        return "*" in self._origins or normalize_origin(origin) in self._origins
