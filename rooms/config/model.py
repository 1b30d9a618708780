"""The configuration's model: one frozen dataclass per section, with the defaults of every key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from backends.address_blocks import AddressBlocks
from backends.audit import DEFAULT_AUDIT_KEEP
from backends.base import AddressQuota, BackendOptions
from rooms.access.addresses import FORWARDED_FOR

LOOPBACK = ("127.0.0.1/8", "::1")
# An address sends over all its sockets and POSTs what several sockets would: the defaults of docs/protocol.md.
ADDRESS_RATE_FACTOR = 4
ADDRESS_BURST_FACTOR = 3


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    allowed_origins: list[str] = field(default_factory=list)
    allowed_hosts: list[str] = field(default_factory=list)
    trusted_proxies: list[str] = field(default_factory=lambda: list(LOOPBACK))
    client_address_header: str = FORWARDED_FOR
    metrics_allowed: list[str] = field(default_factory=lambda: list(LOOPBACK))
    ping_interval: float = 20
    shutdown_grace: float = 5
    log_level: str = "info"
    log_format: str = "text"
    event_loop: str = "asyncio"
    # Read before the rest of the config, by server.py (rooms/service/allocator.py); checked here like the rest.
    allocator: str = "auto"
    # Where browsers reach rooms (``https://chat.example.org``), for the links ``rooms invite`` prints.
    public_url: str = ""


@dataclass(frozen=True)
class BackendConfig:
    url: str = "sqlite:///rooms.db"
    connect_timeout: float = 10
    # Read and checked by the SQL backend only (backends/sql/options.py), which gets it in ``settings``.
    sqlite_synchronous: str = "full"


@dataclass(frozen=True)
class HistoryConfig:
    page_size: int = 50
    retain_per_room: int = 10000
    expire_after_days: float = 0


@dataclass(frozen=True)
class LimitsConfig:
    max_handle_chars: int = 32
    max_message_chars: int = 4000
    max_frame_bytes: int = 65536
    messages_per_second: float = 5
    burst: int = 20
    send_buffer_bytes: int = 1048576
    connections_per_address: int = 50
    # None: derived from the per-connection limit (the defaults of docs/protocol.md), see the properties below.
    address_messages_per_second: float | None = None
    address_burst: int | None = None
    new_rooms_per_hour: int = 60
    searches_per_minute: int = 30
    ipv6_56_factor: int = 4
    ipv6_48_factor: int = 16

    @property
    def address_rate(self) -> float:
        if self.address_messages_per_second is None:
            return self.messages_per_second * ADDRESS_RATE_FACTOR
        return self.address_messages_per_second

    @property
    def address_bucket(self) -> int:
        return self.burst * ADDRESS_BURST_FACTOR if self.address_burst is None else self.address_burst

    @property
    def address_blocks(self) -> AddressBlocks:
        return AddressBlocks(self.ipv6_56_factor, self.ipv6_48_factor)


@dataclass(frozen=True)
class AuthConfig:
    mode: str = "open"
    jwt_secret: str = ""
    # A file holding the secret instead (its content, without the trailing line break); not both.
    jwt_secret_file: str = ""
    jwt_public_key: str = ""
    jwt_audience: str = ""
    # Read by ``rooms token`` only, never by the server: the private half of ``jwt_public_key``.
    jwt_private_key: str = ""


@dataclass(frozen=True)
class RoomsConfig:
    private: list[str] = field(default_factory=list)
    invite_secret: str = ""
    invite_secret_file: str = ""


# How an unnamed moderator token is shown; no token's name may start so.
FINGERPRINT_PREFIX = "token:"


def token_fingerprint(token: str) -> str:
    """What shows an unnamed moderator token (in the audit log): a short hash, from which the token cannot
    be found, but which tells two tokens apart."""
    return FINGERPRINT_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class ModeratorToken:
    """One entry of ``moderation.tokens``: the token, and the name its holder goes by in the audit log
    (``None``: they go by the token's fingerprint)."""

    token: str
    name: str | None = None

    @property
    def actor(self) -> str:
        return token_fingerprint(self.token) if self.name is None else self.name


@dataclass(frozen=True)
class ModerationConfig:
    tokens: list[ModeratorToken] = field(default_factory=list)
    # A YAML file holding a list shaped like ``tokens``, whose entries are added to it.
    tokens_file: str = ""
    # How many of the newest moderator actions the audit log keeps.
    audit_keep: int = DEFAULT_AUDIT_KEEP


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    rooms: RoomsConfig = field(default_factory=RoomsConfig)
    moderation: ModerationConfig = field(default_factory=ModerationConfig)

    def backend_options(self) -> BackendOptions:
        """What the chosen backend is built from; it reads the options it knows itself."""
        return BackendOptions(
            url=self.backend.url,
            retain_per_room=self.history.retain_per_room,
            settings={"sqlite_synchronous": self.backend.sqlite_synchronous},
            quota=AddressQuota(
                self.limits.new_rooms_per_hour,
                self.limits.address_rate,
                self.limits.address_bucket,
                self.limits.address_blocks,
            ),
            audit_keep=self.moderation.audit_keep,
        )
