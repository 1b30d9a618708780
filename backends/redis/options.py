"""Everything ``backend.url`` says to the Redis backend, read here and nowhere else: where Redis is (one
server, a Sentinel set or a Redis Cluster; see ``backends.redis.deployment``) and the backend's own
options, taken off the query string before redis-py reads the rest (socket timeouts, ...).

URLs: ``redis://[user:password@]host:6379/0`` (``rediss://`` for TLS);
``redis+sentinel://[[user]:password@]s1:26379,s2:26379/<master-name>/<db>`` for the master of a Sentinel
set; ``redis+cluster://[[user]:password@]h1:7000,h2:7000/`` for a Redis Cluster (any of its nodes: the rest
are found from them; database 0 only). As in redis-py's ``Sentinel``, the password of a Sentinel URL is
the Redis servers' (master and replicas), and the sentinels are reached with the socket options only.

Options, on every URL:

* ``key_prefix`` (default ``rooms:``): start of every key and channel, so deployments can share a Redis;
* ``dedup_seconds`` (default 86400): how long a ``client_id`` is remembered for deduplication;
* ``ping_interval`` (default 5): seconds of pub/sub silence before a PING; silence for three times
  this (two PINGs unanswered) replaces the connection;
* ``presence_ttl`` (default 30): seconds a process's share of a room's presence outlives its last
  refresh (it refreshes every third of this), so a process that died leaves presence within it.

On Sentinel and Cluster URLs, ``replicas_to_wait`` (default 1): how many replicas must confirm a batch
of stores before it is acknowledged. On Sentinel URLs, ``sentinel_password`` and ``sentinel_username``:
the sentinels' own credentials, when they have ``requirepass``.
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
SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
SENTINEL_OPTIONS = ("sentinel_password", "sentinel_username", "replicas_to_wait")
CLUSTER_OPTIONS = ("replicas_to_wait",)
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_CLUSTER_PORT = 6379
DEFAULT_REPLICAS_TO_WAIT = 1


@dataclass(frozen=True, slots=True)
class ServerTarget:
    url: str  # the URL without our options, for redis-py


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    sentinels: list[tuple[str, int]]
    master_name: str
    connection_kwargs: dict[str, Any]  # for the master's connections (db, password, socket options)
    sentinel_kwargs: dict[str, Any]  # for the sentinels' connections
    replicas_to_wait: int


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    nodes: list[tuple[str, int]]
    connection_kwargs: dict[str, Any]  # password, socket options, ...
    replicas_to_wait: int


@dataclass(frozen=True, slots=True)
class RedisOptions:
    target: ServerTarget | SentinelTarget | ClusterTarget
    key_prefix: str
    dedup_seconds: int
    ping_interval: float
    presence_ttl: float


def parse_redis_url(
    url: str, key_prefix: str | None = None, dedup_seconds: int | None = None, ping_interval: float | None = None
) -> RedisOptions:
    """What ``url`` says; an argument given here wins over the URL's option of the same name."""
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
    scheme = parts.scheme.lower()
    target: ServerTarget | SentinelTarget | ClusterTarget
    if scheme in (SENTINEL_SCHEME, CLUSTER_SCHEME):
        # Not through urlunsplit, which would drop an empty host list's "//" and so change the URL's grammar.
        rest = f"{url.partition('?')[0]}?{urlencode(theirs)}"
        target = parse_sentinel_url(rest) if scheme == SENTINEL_SCHEME else parse_cluster_url(rest)
    else:
        target = ServerTarget(urlunsplit(parts._replace(query=urlencode(theirs))))
    return RedisOptions(target, prefix, int(dedup), ping, presence_ttl)


def parse_sentinel_url(url: str) -> SentinelTarget:
    """The sentinels, master name and connection options of a ``redis+sentinel://`` URL (without the
    options of every URL, which ``parse_redis_url`` took off)."""
    parts = parse_hosts_url(url, SENTINEL_OPTIONS, DEFAULT_SENTINEL_PORT, "sentinel")
    names = parts.path
    if not names or len(names) > 2:
        raise BackendConfigError(f"backend.url: {SENTINEL_SCHEME}:// needs /<master-name>[/<db>] after the sentinels")
    db = names[1] if len(names) == 2 else "0"
    if not db.isdigit():
        raise BackendConfigError(f"backend.url: the database must be a number, got {db!r}")
    kwargs = {**parts.connection_kwargs, "db": int(db)}
    ours = parts.options
    sentinel_kwargs = {name: value for name, value in kwargs.items() if name.startswith("socket_")}
    if "sentinel_password" in ours:
        sentinel_kwargs["password"] = ours["sentinel_password"]
    if "sentinel_username" in ours:
        sentinel_kwargs["username"] = ours["sentinel_username"]
    return SentinelTarget(parts.hosts, names[0], kwargs, sentinel_kwargs, _replicas_to_wait(ours))


def parse_cluster_url(url: str) -> ClusterTarget:
    """The nodes and connection options of a ``redis+cluster://`` URL (without the options of every
    URL, which ``parse_redis_url`` took off)."""
    parts = parse_hosts_url(url, CLUSTER_OPTIONS, DEFAULT_CLUSTER_PORT, "cluster node")
    if parts.path not in ([], ["0"]):
        raise BackendConfigError(f"backend.url: a Redis Cluster has database 0 only, got /{'/'.join(parts.path)}")
    return ClusterTarget(parts.hosts, parts.connection_kwargs, _replicas_to_wait(parts.options))


def _replicas_to_wait(options: dict[str, str]) -> int:
    return whole_number("replicas_to_wait", options.get("replicas_to_wait", str(DEFAULT_REPLICAS_TO_WAIT)))


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
