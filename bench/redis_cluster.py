"""A Redis Cluster of redis-server processes: three masters and a replica of each, each on a free loopback
port. A benchmark row starts one fresh for each round (so no round reads another's keys) and kills it
afterwards; the tests start theirs here too, with options that make a failover quick.

The nodes are joined by hand (slots, MEET, REPLICATE) rather than with ``redis-cli --cluster create``,
which polls once a second; every replica is in sync before the round starts, so that a store's ``WAIT``
for one replica measures replication and not the first full sync.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import redis

SHARDS = 3
SLOT_RANGES = [(0, 5460), (5461, 10922), (10923, 16383)]
START_TIMEOUT = 30.0
NODE_OPTIONS = (
    "--cluster-enabled", "yes",
    "--appendonly", "no", "--save", "",
    "--repl-diskless-sync-delay", "0",  # the replicas' first sync starts at once
    "--bind", "127.0.0.1",
)  # fmt: skip


class ClusterDown(Exception):
    """The cluster did not come up; the message says what it was waiting for."""


def available() -> bool:
    return shutil.which("redis-server") is not None


class RedisClusterNodes:
    def __init__(self, workdir: Path, ports: list[int], options: Sequence[str] = ()) -> None:
        """``ports``: twelve free ports, the six nodes' and then their cluster bus ports (port + 10000,
        the default, may be past 65535 or taken). ``options``: more redis-server options for every node."""
        self.workdir = workdir
        self.ports = ports[:6]  # the first three are the masters, the others their replicas in order
        self.bus_ports = dict(zip(self.ports, ports[6:], strict=True))
        self.options = tuple(options)
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.node_ids: dict[int, str] = {}

    @property
    def hosts(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports[:SHARDS])

    def start(self) -> RedisClusterNodes:
        try:
            self._start()
        except (redis.RedisError, OSError) as exc:
            self.stop()
            raise ClusterDown(str(exc)) from exc
        except BaseException:
            self.stop()
            raise
        return self

    def spawn(self, port: int) -> None:
        """Start the node on ``port``: at first, or again once it was killed (it rejoins from its nodes.conf)."""
        data = self.workdir / str(port)  # a folder each: a replica writes the RDB of its first sync there
        data.mkdir(parents=True, exist_ok=True)
        command = [
            "redis-server", *NODE_OPTIONS, *self.options,
            "--port", str(port), "--cluster-port", str(self.bus_ports[port]),
            "--cluster-config-file", str(self.workdir / f"nodes-{port}.conf"), "--dir", str(data),
            "--logfile", str(self.workdir / f"{port}.log"),
        ]  # fmt: skip
        self.processes[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _start(self) -> None:
        for port in self.ports:
            self.spawn(port)
        clients = {port: redis.Redis(port=port, socket_timeout=5, decode_responses=True) for port in self.ports}
        try:
            for port, client in clients.items():
                wait_until(partial(answers, client), f"redis-server on {port} answers")
            self.node_ids.update({port: client.execute_command("CLUSTER", "MYID") for port, client in clients.items()})
            for epoch, client in enumerate(clients.values(), start=1):
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)  # distinct: no collisions to settle
            for port, (start, end) in zip(self.ports, SLOT_RANGES, strict=False):
                clients[port].execute_command("CLUSTER", "ADDSLOTSRANGE", start, end)
            first = self.ports[0]
            for port in self.ports[1:]:
                clients[port].execute_command("CLUSTER", "MEET", "127.0.0.1", first, self.bus_ports[first])
            wait_until(
                lambda: all(known_nodes(client) == len(clients) for client in clients.values()),
                "every node knows the other five",
            )
            for replica, master in zip(self.ports[SHARDS:], self.ports[:SHARDS], strict=True):
                clients[replica].execute_command("CLUSTER", "REPLICATE", self.node_ids[master])

            def ready() -> bool:
                replicas = [clients[port] for port in self.ports[SHARDS:]]
                states = [client.execute_command("CLUSTER", "INFO") for client in clients.values()]
                links = [client.info("replication").get("master_link_status") for client in replicas]
                return all("cluster_state:ok" in state for state in states) and links == ["up"] * len(replicas)

            wait_until(ready, "cluster_state:ok on every node and every replica in sync")
        finally:
            for client in clients.values():
                client.close()

    def stop(self) -> None:
        for process in self.processes.values():
            process.kill()
        for process in self.processes.values():
            process.wait()
        self.processes.clear()


def answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def known_nodes(client: redis.Redis) -> int:
    lines = client.execute_command("CLUSTER", "NODES").splitlines()
    return sum(1 for line in lines if not {"handshake", "noaddr", "fail"} & set(line.split()[2].split(",")))


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise ClusterDown(f"not within {START_TIMEOUT:.0f}s: {what}")
        time.sleep(0.05)
