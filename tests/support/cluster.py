"""A Redis Cluster of the test's own: three masters and three replicas, each a redis-server process on a
free loopback port, started by the benchmarks' starter (``bench.redis_cluster``) with a short node timeout so
that a failover takes a few seconds; and what the tests do to it: read who serves what, fail over, kill and
restart a node, move a slot."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as redis
from redis.crc import key_slot

from bench.redis_cluster import SHARDS, ClusterDown, RedisClusterNodes, available
from tests.support.factories import service_unreachable
from tests.support.processes import free_port
from tests.support.waiting import eventually

SLOTS = 16384
FAILOVER_OPTIONS = (
    "--cluster-node-timeout", "1000",  # a dead master is failed over within a few seconds
    "--cluster-require-full-coverage", "no",  # the other shards keep answering while one is down
    "--cluster-allow-pubsubshard-when-down", "yes",
    "--cluster-allow-reads-when-down", "no",
)  # fmt: skip


@dataclass(frozen=True)
class Node:
    """One line of CLUSTER NODES: a node as some node sees it."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[tuple[int, int], ...]

    @property
    def usable(self) -> bool:
        return not self.flags & {"fail", "fail?", "handshake", "noaddr"}

    @property
    def is_master(self) -> bool:
        return "master" in self.flags


@dataclass(frozen=True)
class Topology:
    """What one node believes: the live masters with their slots, and the live replicas' masters."""

    masters: dict[int, tuple[tuple[int, int], ...]]
    replicas: dict[int, int]

    def owner(self, slot: int) -> int | None:
        for port, ranges in self.masters.items():
            if any(start <= slot <= end for start, end in ranges):
                return port
        return None

    def covered(self) -> int:
        return sum(end - start + 1 for ranges in self.masters.values() for start, end in ranges)


def parse_nodes(text: str) -> list[Node]:
    nodes = []
    for line in text.splitlines():
        if not line.strip():
            continue
        node_id, address, flags, master, _ping, _pong, _epoch, _link, *slots = line.split()
        ranges = []
        for item in slots:
            if item.startswith("["):  # a slot being migrated or imported: its owner is still listed plainly
                continue
            start, _, end = item.partition("-")
            ranges.append((int(start), int(end or start)))
        nodes.append(
            Node(
                node_id=node_id,
                port=int(address.split("@")[0].rsplit(":", 1)[1]),
                flags=frozenset(flags.split(",")),
                master_id=None if master == "-" else master,
                slots=tuple(sorted(ranges)),
            )
        )
    return nodes


def topology_of(nodes: list[Node]) -> Topology:
    by_id = {node.node_id: node for node in nodes}
    masters = {node.port: node.slots for node in nodes if node.usable and node.is_master and node.slots}
    replicas = {
        node.port: by_id[node.master_id].port
        for node in nodes
        if node.usable and not node.is_master and node.master_id in by_id
    }
    return Topology(masters, replicas)


@asynccontextmanager
async def connect(port: int) -> AsyncIterator[redis.Redis]:
    client = redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=5, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def command(port: int, *arguments: object) -> Any:
    async with connect(port) as client:
        return await client.execute_command(*arguments)  # type: ignore[no-untyped-call]


class RedisClusterSet:
    def __init__(self) -> None:
        self.workdir = tempfile.mkdtemp(prefix="rooms-cluster-")
        # The bus ports are chosen too: port + 10000, the default, may be past 65535 or taken.
        chosen: list[int] = []
        while len(chosen) < 12:
            port = free_port()
            if port not in chosen:
                chosen.append(port)
        self.nodes = RedisClusterNodes(Path(self.workdir), chosen, FAILOVER_OPTIONS)
        self.ports = self.nodes.ports  # the first three start as masters, the rest as their replicas in order
        self.seed_ports = self.ports[:SHARDS]

    @property
    def processes(self) -> dict[int, subprocess.Popen[bytes]]:
        return self.nodes.processes

    @property
    def node_ids(self) -> dict[int, str]:
        return self.nodes.node_ids

    def url(self, **options: object) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.seed_ports)
        query = "&".join(f"{name}={value}" for name, value in options.items())
        return f"redis+cluster://{hosts}/" + (f"?{query}" if query else "")

    @property
    def live_ports(self) -> list[int]:
        return [port for port, process in self.processes.items() if process.poll() is None]

    async def start(self) -> RedisClusterSet:
        if not available():
            service_unreachable("redis-server", "not installed")
        try:
            await asyncio.to_thread(self.nodes.start)  # joining takes a second or two: the loop goes on
            await self.wait_healthy()
        except (ClusterDown, AssertionError, TimeoutError) as exc:
            self.remove()
            service_unreachable("a Redis Cluster of redis-server processes", str(exc))
        return self

    async def _views(self) -> list[Topology] | None:
        """Every live node's topology, or None while some node is unreachable or its cluster not ok."""
        views = []
        for port in self.live_ports:
            try:
                info = await command(port, "CLUSTER", "INFO")
                nodes = await command(port, "CLUSTER", "NODES")
            except (redis.RedisError, OSError):
                return None
            if "cluster_state:ok" not in info:
                return None
            views.append(topology_of(parse_nodes(nodes)))
        return views

    async def _agreed(self, condition: Callable[[Topology], bool] = lambda _: True) -> Topology | None:
        """The topology that every live node holds, if they agree, it covers every slot and meets condition."""
        views = await self._views()
        if not views or any(view != views[0] for view in views):
            return None
        view = views[0]
        if view.covered() != SLOTS or not condition(view):
            return None
        return view

    async def _in_sync(self, view: Topology) -> bool:
        for replica in view.replicas:
            try:
                info = await command(replica, "INFO", "replication")
            except (redis.RedisError, OSError):
                return False
            if info.get("master_link_status") != "up":
                return False
        return True

    async def _wait_for(self, condition: Callable[[Topology], bool], what: str, timeout: float = 30) -> Topology:
        async def reached() -> Topology | None:
            view = await self._agreed(condition)
            return view if view is not None and await self._in_sync(view) else None

        result: Topology = await eventually(reached, timeout=timeout, interval=0.05, message=what)
        return result

    async def wait_healthy(self) -> None:
        """Until every live node is ok, agrees on who serves what, and every live node has its place in that:
        three masters, and every replica in sync (a restarted node counts once it has rejoined)."""
        live = set(self.live_ports)

        def healthy(view: Topology) -> bool:
            return len(view.masters) == SHARDS and set(view.masters) | set(view.replicas) == live

        await self._wait_for(healthy, "every live node ok, agreeing, three masters and the replicas in sync")

    async def _view(self) -> Topology:
        for port in self.live_ports:
            try:
                return topology_of(parse_nodes(await command(port, "CLUSTER", "NODES")))
            except (redis.RedisError, OSError):
                continue
        raise AssertionError("no live cluster node answers")

    async def master_ports(self) -> list[int]:
        return sorted((await self._view()).masters)

    async def master_of(self, key: str) -> int:
        owner = (await self._view()).owner(key_slot(key.encode()))
        assert owner is not None, f"no master serves the slot of {key!r}"
        return owner

    async def replica_of(self, master_port: int) -> int:
        view = await self._view()
        replicas = [replica for replica, master in view.replicas.items() if master == master_port]
        assert replicas, f"the master on {master_port} has no live replica"
        return replicas[0]

    async def failover(self, master_port: int) -> int:
        """CLUSTER FAILOVER on the master's replica; its port once every node has it serve those slots."""
        slots = (await self._view()).masters[master_port]
        replica = await self.replica_of(master_port)
        await command(replica, "CLUSTER", "FAILOVER")
        await self._wait_for(
            lambda view: view.masters.get(replica) == slots and view.replicas.get(master_port) == replica,
            f"{replica} serves the slots of {master_port}, which replicates it",
        )
        return replica

    def restart(self, port: int) -> None:
        """Start a killed node again as it was: it rejoins from its nodes.conf, as its successor's replica."""
        self.nodes.spawn(port)

    async def move_slot(self, slot: int, to_port: int) -> None:
        """Resharding by hand, one slot with its keys, as ``redis-cli --cluster reshard`` does it."""
        view = await self._view()
        source = view.owner(slot)
        assert source is not None, f"no master serves slot {slot}"
        if source == to_port:
            return
        await command(to_port, "CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_ids[source])
        await command(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_ids[to_port])
        while keys := await command(source, "CLUSTER", "GETKEYSINSLOT", slot, 100):
            await command(source, "MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *keys)
        # The target first, so that the slot is never left without an owner that accepts it.
        others = [port for port in view.masters if port not in (source, to_port)]
        for port in [to_port, source, *others]:
            await command(port, "CLUSTER", "SETSLOT", slot, "NODE", self.node_ids[to_port])
        await self._wait_for(lambda view: view.owner(slot) == to_port, f"every node has {to_port} serve slot {slot}")

    async def delete_keys(self, prefix: str) -> None:
        """Every key starting with prefix, on every master, one at a time (DEL across slots is refused)."""
        pattern = "".join(f"\\{char}" if char in "*?[]\\" else char for char in prefix) + "*"
        for port in await self.master_ports():
            async with connect(port) as client:
                async for key in client.scan_iter(match=pattern, count=1000):
                    await client.unlink(key)

    def remove(self) -> None:
        self.nodes.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
