"""A Sentinel set of the test's own: a master, a replica and three sentinels, each a redis-server process
on a free loopback port, with short failure timeouts so that a failover takes a few seconds."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import redis.asyncio as redis

from tests.support.factories import service_unreachable
from tests.support.processes import free_port
from tests.support.waiting import eventually

MASTER_NAME = "roomsmaster"
# As the README advises: a master cut off from its replica (a demoted one, still taking writes until
# Sentinel reconfigures it) refuses writes, instead of taking ones that the failover then throws away.
SAFE_WRITES = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")


class SentinelSet:
    def __init__(self, password: str | None = None) -> None:
        """``password``: the master and its replica take only clients that give it (the sentinels know it)."""
        self.password = password
        self.workdir = tempfile.mkdtemp(prefix="rooms-sentinel-")
        self.data_ports = [free_port(), free_port()]  # the master first, then its replica
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self._arguments: dict[int, tuple[str, ...]] = {}

    def url(self, db: int = 0, **options: object) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        query = "&".join(f"{name}={value}" for name, value in options.items())
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/{db}" + (f"?{query}" if query else "")

    def _spawn(self, port: int, *arguments: str) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            service_unreachable("redis-server", "not installed")
        assert executable is not None
        self._arguments[port] = arguments
        log = os.path.join(self.workdir, f"{port}.log")
        command = [executable, *arguments, "--port", str(port), "--bind", "127.0.0.1", "--logfile", log]
        self.processes[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def start(self) -> SentinelSet:
        try:
            await self._start()
        except (AssertionError, TimeoutError) as exc:
            self.remove()
            service_unreachable("a Sentinel set of redis-server processes", str(exc))
        return self

    async def _start(self) -> None:
        master, replica = self.data_ports
        for port in self.data_ports:
            data = os.path.join(self.workdir, str(port))
            os.mkdir(data)
            extra = ["--replicaof", "127.0.0.1", str(master)] if port == replica else []
            if self.password is not None:
                extra += ["--requirepass", self.password, "--masterauth", self.password]
            self._spawn(
                port, "--dir", data, "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0", *extra
            )
        await self._wait(master, lambda info: info.get("slave0", {}).get("state") == "online", "the replica in sync")
        for port in self.sentinel_ports:
            conf = os.path.join(self.workdir, f"sentinel-{port}.conf")
            with open(conf, "w") as file:
                file.write(
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n"
                    f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                    f"sentinel failover-timeout {MASTER_NAME} 3000\n"
                )
                if self.password is not None:
                    file.write(f"sentinel auth-pass {MASTER_NAME} {self.password}\n")
            self._spawn(port, conf, "--sentinel", "--dir", self.workdir)
        for port in self.sentinel_ports:
            await self._wait_sentinel(port)

    async def _wait(self, port: int, ready: object, what: str) -> None:
        client = redis.Redis(port=port, socket_connect_timeout=1, password=self.password)

        async def check() -> bool:
            try:
                return bool(ready(await client.info("replication")))  # type: ignore[operator]
            except (redis.RedisError, OSError):
                return False

        try:
            await eventually(check, timeout=15, interval=0.05, message=f"redis-server on {port}: {what}")
        finally:
            await client.aclose()

    async def _wait_sentinel(self, port: int) -> None:
        """Until this sentinel knows the master, its replica and both other sentinels (a failover needs them)."""
        client = redis.Redis(port=port, socket_connect_timeout=1, decode_responses=True)

        async def check() -> bool:
            try:
                replicas = await client.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
                sentinels = await client.execute_command("SENTINEL", "SENTINELS", MASTER_NAME)
            except (redis.RedisError, OSError):
                return False
            return len(replicas) == 1 and len(sentinels) == 2

        try:
            await eventually(check, timeout=30, interval=0.1, message=f"sentinel on {port} sees the set")
        finally:
            await client.aclose()

    async def master_port(self) -> int:
        client = redis.Redis(port=self.sentinel_ports[0], decode_responses=True)
        try:
            _, port = await client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            return int(port)
        finally:
            await client.aclose()

    async def failover(self) -> int:
        """Ask Sentinel to fail over now; return the new master's port once every sentinel names it."""
        old = await self.master_port()
        client = redis.Redis(port=self.sentinel_ports[0], decode_responses=True)
        try:
            await client.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        finally:
            await client.aclose()
        return await self._wait_moved_from(old)

    async def kill_master(self) -> int:
        """``kill -9`` the master; return its port once every sentinel names the replica instead."""
        old = await self.master_port()
        self.processes[old].kill()
        self.processes[old].wait(10)
        await self._wait_moved_from(old)
        return old

    async def _wait_moved_from(self, old: int) -> int:
        new = next(port for port in self.data_ports if port != old)

        async def moved() -> bool:
            for port in self.sentinel_ports:
                answer = redis.Redis(port=port, decode_responses=True)
                try:
                    _, named = await answer.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                finally:
                    await answer.aclose()
                if int(named) != new:
                    return False
            return True

        await eventually(moved, timeout=30, interval=0.1, message="every sentinel names the new master")
        return new

    def restart(self, port: int) -> None:
        """Start a killed server again as it was (empty: Sentinel makes it the master's replica)."""
        self._spawn(port, *self._arguments[port])

    def remove(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(10)
        self.processes.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)
