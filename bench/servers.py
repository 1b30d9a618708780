"""The servers a benchmark scenario runs: the baseline, Node.js ``ws`` and rooms on each backend, each as its
own process.

A server is started on a free loopback port with a config of its own in a temporary directory, waited
for until its port accepts connections, and stopped with SIGTERM (then SIGKILL) afterwards. A server
whose backend module is not there, or whose service does not answer, is skipped with the reason. A
Redis Cluster row starts a cluster of its own (``bench.redis_cluster``) before its servers and removes
it after them. rooms runs with the allocator it chooses itself (``server.allocator: auto``: jemalloc where
libjemalloc2 is installed), or Python's own where a row says so.

A started server's memory is read as settled: jemalloc gives back what starting freed about a second after
it listens, so a figure taken against the empty process reads it once two reads a while apart agree.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.procstat import total_rss_kib
from bench.redis_cluster import ClusterDown, RedisClusterNodes, available

ROOT = Path(__file__).resolve().parent.parent
NODE_SERVER = ROOT / "bench" / "node" / "server.js"
NODE_WS_PACKAGE = ROOT / "bench" / "node" / "node_modules" / "ws" / "package.json"
PYTHON = sys.executable
START_TIMEOUT = 30.0
# Reads of a started server's RSS this far apart, three times jemalloc's decay (500 ms, rooms/service/allocator.py),
# so that its giving back what starting freed falls between two of them; settled when two agree within the
# margin, or at the last read.
SETTLE_INTERVAL = 1.5
SETTLE_MARGIN = 0.01
SETTLE_READS = 8
STOP_TIMEOUT = 10.0
BENCH_DATABASE = "rooms_bench"
# Redis database number for benchmark runs, apart from the default one that tests and users share.
BENCH_REDIS_URL = "redis://127.0.0.1:6379/9"
# A backend URL holding this starts a Redis Cluster of its own for the row (see bench.redis_cluster).
CLUSTER_HOSTS = "{cluster}"
BENCH_REDIS_CLUSTER_URL = f"redis+cluster://{CLUSTER_HOSTS}/"

# rooms' own limits, raised so they do not throttle the load (the baseline has none at all): the load
# generator's clients come from 249 loopback addresses (bench.sources), 77 each at 19,000, past the default 50.
BENCH_LIMITS = {
    "messages_per_second": 1_000_000,
    "burst": 1_000_000,
    "send_buffer_bytes": 64 * 1024 * 1024,
    "connections_per_address": 1_000_000,
    "new_rooms_per_hour": 1_000_000,
    "searches_per_minute": 1_000_000,
}


class Unavailable(Exception):
    """The server cannot run here (module missing, service down); the message says why."""


@dataclass
class Started:
    processes: list[subprocess.Popen[bytes]]
    ports: list[int]
    logs: list[Path]
    cluster: RedisClusterNodes | None = None

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    @property
    def urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{port}" for port in self.ports]


@dataclass(frozen=True)
class ServerSpec:
    """One server configuration: ``kind`` is "baseline", "node" or "rooms"; ``backend`` a rooms backend URL."""

    name: str
    kind: str
    backend: str = "memory://"
    uvloop: bool = False
    processes: int = 1
    sqlite_commit_each: bool = False
    allocator: str = "auto"  # rooms' server.allocator
    # A row run only when named with ``--servers``, right after this row in every scenario that has it.
    alongside: str | None = None
    prepare: Callable[[], None] | None = field(default=None, compare=False)

    def check_available(self) -> None:
        if self.uvloop and importlib.util.find_spec("uvloop") is None:
            raise Unavailable("uvloop is not installed")
        if self.kind == "node":
            if shutil.which("node") is None:
                raise Unavailable("node is not installed")
            if not NODE_WS_PACKAGE.exists():
                raise Unavailable("the ws package is not installed: npm ci --prefix bench/node")
            return
        if self.kind != "rooms" or self.backend.startswith("memory:"):
            return
        if CLUSTER_HOSTS in self.backend and not available():
            raise Unavailable("redis-server is not installed")
        scheme = self.backend.split(":", 1)[0]
        module = "backends.redis.backend" if scheme.startswith("redis") else "backends.sql.backend"
        if not (ROOT / f"{module.replace('.', '/')}.py").exists():
            raise Unavailable(f"{module} is not in this tree yet")
        service = {"postgresql": 5432, "mysql": 3306, "redis": 6379}.get(scheme)
        if service is not None and not port_open(service):
            raise Unavailable(f"{scheme} does not answer on 127.0.0.1:{service}")

    def backend_url(self, workdir: Path) -> str:
        return self.backend.replace("{workdir}", str(workdir))

    def start(
        self,
        workdir: Path,
        before_start: Callable[[str], None] | None = None,
        history: dict[str, int] | None = None,
        fixed_ports: list[int] | None = None,
        settle: bool = True,
    ) -> Started:
        """Start the server's processes; ``before_start`` is given the backend URL once the store is
        prepared and before any process starts (to fill it), ``history`` goes into the config, ``fixed_ports``
        (one per process) replace free ones, as for a restart. Returned once they listen and, with ``settle``,
        once their memory has settled."""
        self.check_available()
        if self.prepare is not None:
            self.prepare()
        if before_start is not None:
            before_start(self.backend_url(workdir))
        processes, ports, logs = [], [], []
        cluster = None
        try:
            if CLUSTER_HOSTS in self.backend:
                try:
                    cluster = RedisClusterNodes(workdir / f"{self.name}-cluster", free_ports(12)).start()
                except ClusterDown as exc:
                    raise Unavailable(f"the Redis Cluster did not start: {exc}") from None
            for index in range(self.processes):
                port = fixed_ports[index] if fixed_ports else free_port()
                log = workdir / f"{self.name}-{index}.log"
                with open(log, "wb") as output:
                    processes.append(
                        subprocess.Popen(
                            self._command(port, workdir, index, cluster, history),
                            cwd=ROOT,
                            env=os.environ,
                            stdout=output,
                            stderr=subprocess.STDOUT,
                        )
                    )
                ports.append(port)
                logs.append(log)
            for process, port, log in zip(processes, ports, logs, strict=True):
                wait_listening(process, port, log)
        except BaseException:
            stop(Started(processes, ports, logs, cluster))
            raise
        started = Started(processes, ports, logs, cluster)
        if settle:
            wait_settled(started.pids)
        return started

    def _command(
        self, port: int, workdir: Path, index: int, cluster: RedisClusterNodes | None, history: dict[str, int] | None
    ) -> list[str]:
        if self.kind == "node":
            return ["node", str(NODE_SERVER), "--port", str(port)]
        if self.kind == "baseline":
            command = [PYTHON, "-m", "bench.baseline_server", "--port", str(port)]
            if self.uvloop:
                command.append("--uvloop")
            if self.sqlite_commit_each:
                command += ["--sqlite", str(workdir / f"{self.name}.db")]
            return command
        backend = self.backend_url(workdir)
        if cluster is not None:
            backend = backend.replace(CLUSTER_HOSTS, cluster.hosts)
        config = {
            "server": {
                "host": "127.0.0.1",
                "port": port,
                "log_level": "warning",
                "event_loop": "uvloop" if self.uvloop else "asyncio",
                "allocator": self.allocator,
            },
            "backend": {"url": backend, "connect_timeout": 5},
            "limits": BENCH_LIMITS,
            **({"history": history} if history else {}),
        }
        path = workdir / f"{self.name}-{index}.yaml"
        path.write_text(yaml.safe_dump(config))
        return [PYTHON, "server.py", "--config", str(path)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (one probe at a time may be given the same port twice)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def port_open(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise Unavailable(f"server exited with status {process.returncode}: {tail[0][:200]}")
        if port_open(port, timeout=0.2):
            return
        time.sleep(0.1)
    raise Unavailable(f"server did not listen on port {port} within {START_TIMEOUT:.0f}s")


def wait_settled(
    pids: list[int], read: Callable[[list[int]], int] = total_rss_kib, pause: Callable[[float], None] = time.sleep
) -> int:
    """The processes' RSS in KiB once two reads ``SETTLE_INTERVAL`` apart agree within ``SETTLE_MARGIN``, or the
    last of ``SETTLE_READS``."""
    before = read(pids)
    for _ in range(SETTLE_READS - 1):
        pause(SETTLE_INTERVAL)
        now = read(pids)
        if abs(now - before) <= SETTLE_MARGIN * before:
            return now
        before = now
    return before


def stop(started: Started) -> None:
    for process in started.processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started.processes:
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if started.cluster is not None:
        started.cluster.stop()


def fresh_sql_database(scheme: str) -> Callable[[], None]:
    """Drop and create the benchmark's own database, so no run reads another's rows (or tests' tables)."""

    def prepare() -> None:
        if scheme == "postgresql":
            import psycopg2

            connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
            connection.autocommit = True
        else:
            import pymysql

            connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE}")
                cursor.execute(f"CREATE DATABASE {BENCH_DATABASE}")
        finally:
            connection.close()

    return prepare


POSTGRESQL_URL = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DATABASE}"
MARIADB_URL = f"mysql://root@127.0.0.1:3306/{BENCH_DATABASE}"

SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec("baseline", "baseline"),
        ServerSpec("baseline+uvloop", "baseline", uvloop=True),
        ServerSpec("node-ws", "node"),
        ServerSpec("rooms", "rooms"),
        ServerSpec("rooms+uvloop", "rooms", uvloop=True),
        ServerSpec("rooms-pymalloc", "rooms", allocator="python", alongside="rooms"),
        ServerSpec("baseline-sqlite-commit-each", "baseline", sqlite_commit_each=True),
        ServerSpec("rooms-sqlite", "rooms", backend="sqlite:///{workdir}/rooms.db"),
        ServerSpec("rooms-postgresql", "rooms", backend=POSTGRESQL_URL, prepare=fresh_sql_database("postgresql")),
        ServerSpec("rooms-mariadb", "rooms", backend=MARIADB_URL, prepare=fresh_sql_database("mysql")),
        ServerSpec("rooms-redis", "rooms", backend=BENCH_REDIS_URL),
        ServerSpec("rooms-redis-x2", "rooms", backend=BENCH_REDIS_URL, processes=2),
        ServerSpec("rooms-redis-x6", "rooms", backend=BENCH_REDIS_URL, processes=6),
        ServerSpec("rooms-redis-x6+uvloop", "rooms", backend=BENCH_REDIS_URL, uvloop=True, processes=6),
        ServerSpec("rooms-redis-cluster-x2", "rooms", backend=BENCH_REDIS_CLUSTER_URL, processes=2),
    )
}
