"""Where the Redis backend's Redis is: one server (``single``), the master of a Sentinel set
(``sentinel``) or a Redis Cluster (``cluster``), chosen once, here, from ``backend.url``. The backend and
its subscriber use a ``Deployment`` and never ask which one it is.
"""

from __future__ import annotations

from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from backends.errors import BackendConfigError
from backends.redis.cluster import ClusterDeployment
from backends.redis.epoch import StoreEpoch
from backends.redis.keys import RedisKeys
from backends.redis.options import ClusterTarget, RedisOptions, SentinelTarget, ServerTarget
from backends.redis.scripts import Run
from backends.redis.sentinel import SentinelMaster
from backends.redis.single import SingleServer


class Deployment(Protocol):
    kind: str  # the backend's kind, as /healthz and the logs name it
    # Every command but the batches of scripts and pub/sub: a client that follows the master, or the
    # cluster's slots (which refuses a command across them).
    commands: Redis
    keys: RedisKeys

    async def start(self) -> None:
        """Connect (read the cluster's slots)."""

    async def upgrade_layout(self) -> None:
        """Rename the keys an earlier release left, if any could be here (``backends.redis.migration``)."""

    async def run_scripts(self, runs: list[Run], wait_for_replicas: bool = False) -> list[Any]:
        """Run scripts in as few round trips as the deployment allows, each reply in its run's place (an
        exception for one that failed). ``wait_for_replicas``: each counts as failed unless the replicas
        the URL asks for (``replicas_to_wait``) confirm it, as a failover would otherwise lose it."""

    def places(self) -> list[str]:
        """The pub/sub sessions there are: one per server that pushes rooms' messages."""

    def place_of(self, channel: str) -> str | None:
        """The session a room's channel belongs to, as last read; None while no server serves it."""

    def pubsub_connection(self, place: str) -> AbstractConnection:
        """A new, unconnected, RESP3 connection for ``place``'s session (RESP3, so that the stream can be
        read on it too, in turn with what it is pushed; see ``backends.redis.session``)."""

    def subscribe_groups(self, channels: list[str]) -> list[list[str]]:
        """The SSUBSCRIBE commands that subscribe a session to ``channels``."""

    async def moved(self, conn: AbstractConnection) -> str | None:
        """Why ``conn`` no longer reaches the server its session is for, or None while it does."""

    def store_epoch(self) -> StoreEpoch:
        """How a session notices that the store lost its data (``backends.redis.epoch``)."""

    async def refresh(self) -> None:
        """Read again where rooms are (a cluster's slots), after a failure or now and then."""

    async def health(self) -> None:
        """Return if the store answers; raise ``BackendUnavailable`` otherwise."""

    async def close(self) -> None:
        """Release every connection."""


def open_deployment(options: RedisOptions) -> Deployment:
    """The deployment ``options`` name; ``BackendConfigError`` naming ``backend.url`` for a bad option."""
    try:
        match options.target:
            case ClusterTarget():
                return ClusterDeployment(options.target, options.key_prefix)
            case SentinelTarget():
                return SentinelMaster(options.target, options.key_prefix)
            case ServerTarget():
                return SingleServer.from_url(options.target.url, options.key_prefix)
    except (ValueError, TypeError) as exc:
        # redis-py hands unknown query options to the connection class: each deployment makes one now.
        raise BackendConfigError(f"backend.url: {exc}") from None
