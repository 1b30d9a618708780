"""The Redis backend's own options, read off the query string of ``backend.url`` (the rest is redis-py's).

* ``key_prefix`` (default ``rooms:``): start of every key and channel, so deployments can share a Redis;
* ``dedup_seconds`` (default 86400): how long a ``client_id`` is remembered for deduplication;
* ``ping_interval`` (default 5): seconds of pub/sub silence before a PING; silence for three times
  this (two PINGs unanswered) replaces the connection;
* ``presence_ttl`` (default 30): seconds a process's share of a room's presence outlives its last
  refresh (it refreshes every third of this), so a process that died leaves presence within it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from redis.asyncio.connection import parse_url

from backends.errors import BackendConfigError

DEFAULT_PREFIX = "rooms:"
DEFAULT_DEDUP_SECONDS = 86400
DEFAULT_PING_INTERVAL = 5.0
DEFAULT_PRESENCE_TTL = 30.0
OURS = ("key_prefix", "dedup_seconds", "ping_interval", "presence_ttl")


@dataclass(frozen=True, slots=True)
class RedisOptions:
    redis_url: str  # the URL without our options, for redis-py
    key_prefix: str
    dedup_seconds: int
    ping_interval: float
    presence_ttl: float


def parse_redis_url(
    url: str, key_prefix: str | None = None, dedup_seconds: int | None = None, ping_interval: float | None = None
) -> RedisOptions:
    """Our options from the URL; an argument given here wins over the URL's."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in OURS:
            ours[name] = value
        else:
            theirs.append((name, value))
    prefix = key_prefix if key_prefix is not None else ours.get("key_prefix", DEFAULT_PREFIX)
    if not prefix:
        raise BackendConfigError("backend.url: key_prefix must not be empty")
    if "{" in prefix or "}" in prefix:
        # Braces would end the hash tags that keep each room's keys in one cluster slot.
        raise BackendConfigError(f"backend.url: key_prefix must not hold braces, got {prefix!r}")
    dedup = _positive("dedup_seconds", dedup_seconds or ours.get("dedup_seconds"), DEFAULT_DEDUP_SECONDS)
    ping = _positive("ping_interval", ping_interval or ours.get("ping_interval"), DEFAULT_PING_INTERVAL)
    presence_ttl = _positive("presence_ttl", ours.get("presence_ttl"), DEFAULT_PRESENCE_TTL)
    return RedisOptions(urlunsplit(parts._replace(query=urlencode(theirs))), prefix, int(dedup), ping, presence_ttl)


def _positive(name: str, raw: str | float | None, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0
    if not value > 0:
        raise BackendConfigError(f"backend.url: {name} must be a positive number, got {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class HostsUrl:
    """A URL naming several servers (``scheme://[[user]:password@]h1:p1,h2:p2/path?query``), as Sentinel
    and Redis Cluster URLs do, read into its parts."""

    hosts: list[tuple[str, int]]
    path: list[str]  # the path's parts, unquoted
    options: dict[str, str]  # the query's options named by the caller
    connection_kwargs: dict[str, Any]  # the credentials and the rest of the query, as redis-py reads them


def parse_hosts_url(url: str, options: tuple[str, ...], default_port: int, server: str) -> HostsUrl:
    """Read a several-server URL; ``BackendConfigError`` naming ``backend.url`` (and ``server``, what a
    host is) for a malformed one."""
    location, _, query = url.split("://", 1)[1].partition("?")
    netloc, _, path = location.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    addresses = [_address(host, default_port, server) for host in hosts.split(",") if host]
    if not addresses:
        raise BackendConfigError(f"backend.url: {url.split('://', 1)[0]}:// needs at least one {server} host:port")
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in options:
            ours[name] = value
        else:
            theirs.append((name, value))
    try:
        # redis-py's own reading of the query (types of socket_timeout, ...), on a placeholder host.
        credentials = f"{userinfo}@" if userinfo else ""
        kwargs: dict[str, Any] = dict(parse_url(f"redis://{credentials}localhost/0?{urlencode(theirs)}"))
    except ValueError as exc:
        raise BackendConfigError(f"backend.url: {exc}") from None
    for name in ("host", "port", "db"):
        kwargs.pop(name, None)
    return HostsUrl(addresses, [unquote(part) for part in path.split("/") if part], ours, kwargs)


def whole_number(name: str, raw: str) -> int:
    if not raw.isdigit():
        raise BackendConfigError(f"backend.url: {name} must be a whole number, got {raw!r}")
    return int(raw)


def _address(host: str, default_port: int, server: str) -> tuple[str, int]:
    name, _, port = host.rpartition(":") if ":" in host else (host, "", str(default_port))
    if not name or not port.isdigit():
        raise BackendConfigError(f"backend.url: a {server} must be host:port, got {host!r}")
    return name, int(port)
