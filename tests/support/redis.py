"""What the Redis tests share: reaching Redis, server.py processes waited on without blocking the loop
(a proxy the test runs may sit between them and Redis), a private redis-server, and socket peers
that keep every frame they receive."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.exceptions import RedisError
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.websocket import WebSocketClientConnection

from tests.support.clients import connect
from tests.support.factories import service_unreachable
from tests.support.factories.redis import REDIS_URL, delete_prefix, unique_prefix
from tests.support.processes import ServerProcess, free_port
from tests.support.waiting import eventually

# Senders in these tests go faster than a person; the rate limit is tested elsewhere.
FAST_CONFIG = "limits:\n  messages_per_second: 1000\n  burst: 1000\n"

__all__ = ["FAST_CONFIG", "REDIS_URL", "delete_prefix", "unique_prefix"]


async def require_redis(url: str = REDIS_URL) -> None:
    client = redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        service_unreachable(f"Redis at {url}", str(exc))
    finally:
        await client.aclose()


def redis_address(url: str = REDIS_URL) -> tuple[str, int]:
    """Where a proxy in front of the Redis of ``url`` forwards to."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


def through_proxy(port: int, url: str = REDIS_URL) -> str:
    """``url`` (its database, without credentials) reached through a local proxy on ``port``."""
    return urlsplit(url)._replace(netloc=f"127.0.0.1:{port}").geturl()


def prefixed_url(url: str, prefix: str, **options: Any) -> str:
    query = "&".join(f"{name}={value}" for name, value in {"key_prefix": prefix, **options}.items())
    return f"{url}?{query}"


async def get_json(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}{path}", request_timeout=10)
    except HTTPClientError as exc:
        assert exc.response is not None
        return exc.code, json.loads(exc.response.body)
    return response.code, json.loads(response.body)


async def wait_healthy(server: ServerProcess, timeout: float = 20) -> None:
    """Poll /healthz from the event loop (a blocking wait would also stop a proxy running on it)."""

    async def healthy() -> bool:
        if server.process.poll() is not None:
            raise AssertionError(f"server.py exited with {server.process.returncode}:\n{server.log()}")
        try:
            return (await get_json(server.port, "/healthz"))[0] == 200
        except OSError:
            return False

    await eventually(healthy, timeout, interval=0.05, message=lambda: f"server.py healthy:\n{server.log()}")


async def history_ids(port: int, room: str) -> list[str]:
    """Every id in the room's history, oldest first, paging with ``after``."""
    ids: list[str] = []
    after = "0"
    while True:
        code, page = await get_json(port, f"/api/rooms/{room}/messages?limit=200&after={after}")
        assert code == 200, page
        ids += [message["id"] for message in page["messages"]]
        if not page["has_more"]:
            return ids
        after = ids[-1]


class Peer:
    """A socket whose frames are read as they come, so a test can wait for any of them later."""

    def __init__(self, ws: WebSocketClientConnection, name: str) -> None:
        self.ws = ws
        self.name = name
        self.frames: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def join(cls, port: int, room: str, name: str, since: str | None = "0", features: str | None = None) -> Peer:
        return cls(await connect(port, room, since=since, features=features), name)

    async def _read(self) -> None:
        while (frame := await self.ws.read_message()) is not None:
            self.frames.append(json.loads(frame))
            self._changed.set()
        self._changed.set()

    def messages(self) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame.get("type") == "message"]

    async def wait_until(self, predicate: Any, timeout: float = 20) -> None:
        async def check() -> None:
            while not predicate(self):
                if self._reader.done():
                    raise AssertionError(f"{self.name} closed: {self.ws.close_code} {self.ws.close_reason}")
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(check(), timeout)

    async def close(self) -> None:
        self.ws.close()
        await asyncio.wait([self._reader], timeout=5)
        self._reader.cancel()


class PrivateRedis:
    """A redis-server of the test's own on a free port, which the test may restart empty; with ``password``,
    it takes only clients that give it (``requirepass``)."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="rooms-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> PrivateRedis:
        executable = shutil.which("redis-server")
        if executable is None:
            service_unreachable("redis-server", "not installed")
        command = [
            executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", self.workdir, "--logfile", os.path.join(self.workdir, "redis.log"),
        ]  # fmt: skip
        if self.password is not None:
            command += ["--requirepass", self.password]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.from_url(self.url, password=self.password)

        async def answers() -> bool:
            try:
                return bool(await client.ping())
            except (redis.RedisError, OSError):
                return False

        try:
            await eventually(answers, timeout=10, interval=0.05, message=f"private redis-server on {self.port}")
        finally:
            await client.aclose()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    async def restart_empty(self) -> None:
        """Killed and started again without persistence: everything it held is gone."""
        self.stop()
        await self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


async def shard_subscribers(port: int, channel: str) -> int:
    """How many clients of the Redis on ``port`` listen to the shard channel ``channel``, as an operator asks
    it (``PUBSUB SHARDNUMSUB``); 0 when that Redis does not answer."""
    client = redis.Redis(port=port)
    try:
        reply = await client.execute_command("PUBSUB", "SHARDNUMSUB", channel)
    except (RedisError, OSError):
        return 0
    finally:
        await client.aclose()
    return int(reply[1])
