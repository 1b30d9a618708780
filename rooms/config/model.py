"""The configuration's model: one frozen dataclass per section, with the defaults of every key."""

from __future__ import annotations

from dataclasses import dataclass, field

from backends.address_blocks import AddressBlocks
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
    event_loop: str = "asyncio"
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
    jwt_public_key: str = ""
    jwt_audience: str = ""
    # Read by ``rooms token`` only, never by the server: the private half of ``jwt_public_key``.
    jwt_private_key: str = ""


@dataclass(frozen=True)
class RoomsConfig:
    private: list[str] = field(default_factory=list)
    invite_secret: str = ""


@dataclass(frozen=True)
class ModerationConfig:
    tokens: list[str] = field(default_factory=list)


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
        )
