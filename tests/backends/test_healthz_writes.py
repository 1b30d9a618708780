"""/healthz while the store answers but takes no writes: a full disk under SQLite, a Redis that became a
read-only replica. Its stores fail, so /healthz says 503 (never the path or the error, which go to the log)
until a store succeeds again."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import WebSocketClientConnection

from backends.base import Backend
from backends.redis.backend import RedisBackend
from backends.sql.backend import SQLBackend
from rooms.web.app import make_app
from tests.support.apps import app_config, shut_down
from tests.support.clients import connect, receive_json, send_json
from tests.support.factories import service_unreachable
from tests.support.factories.sql import sql_backend
from tests.support.processes import free_port
from tests.support.redis import PrivateRedis

# Long messages, so that a few of them fill what room the disk has left.
LONG = "x" * 3000
MAX_SENDS = 200


async def healthz(port: int) -> tuple[int, bytes]:
    response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/healthz", raise_error=False)
    return response.code, response.body


async def send(socket_: WebSocketClientConnection, text: str) -> dict[str, Any]:
    """Send a message; the server's answer: its broadcast, or the error that it was not stored."""
    await send_json(socket_, {"handle": "ann", "message": text})
    return await receive_json(socket_)


async def send_until_refused(socket_: WebSocketClientConnection) -> dict[str, Any]:
    for n in range(MAX_SENDS):
        answer = await send(socket_, f"{n} {LONG}")
        if answer["type"] == "error":
            return answer
    raise AssertionError(f"{MAX_SENDS} messages stored on a store that should take none")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A file system of the test's own, 1 MiB (tmpfs), that the test fills up."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        service_unreachable("a tmpfs of the test's own (mounting needs root)", mounted.stderr.strip())
    yield mount_point
    subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(directory: Path) -> Path:
    """Write a file into ``directory`` until its file system has no room left."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def serve(backend: Backend, io_loop: Any) -> Iterator[Any]:
    io_loop.run_sync(backend.start)
    application = make_app(app_config(), backend)
    yield application
    io_loop.run_sync(lambda: shut_down(application, backend))


@pytest.fixture
def disk_backend(small_disk: Path) -> SQLBackend:
    return sql_backend(f"sqlite:///{small_disk / 'rooms.db'}")


@pytest.fixture
def private_redis(io_loop: Any) -> Iterator[PrivateRedis]:
    server = io_loop.run_sync(PrivateRedis().start)
    yield server
    server.stop()


@pytest.fixture
def app(request: pytest.FixtureRequest, io_loop: Any) -> Iterator[Any]:
    """The application on the store the test takes writes from (``disk_backend`` or ``private_redis``)."""
    if "private_redis" in request.fixturenames:
        backend: Backend = RedisBackend(request.getfixturevalue("private_redis").url)
    else:
        backend = request.getfixturevalue("disk_backend")
    yield from serve(backend, io_loop)


@pytest.mark.gen_test(timeout=60)
async def test_healthz_is_503_while_a_full_disk_takes_no_stores_and_200_once_one_succeeds(
    small_disk, disk_backend, http_server, http_port, caplog
):
    socket_ = await connect(http_port, "lobby")
    assert (await send(socket_, "before"))["message"] == "before"
    assert (await healthz(http_port))[0] == 200

    filler = fill(small_disk)
    refused = await send_until_refused(socket_)
    assert refused["code"] == "unavailable"
    with caplog.at_level(logging.WARNING):
        code, body = await healthz(http_port)
    assert (code, json.loads(body)) == (503, {"status": "unavailable", "backend": "sqlite"})
    assert b"full" not in body and str(small_disk).encode() not in body
    assert any("full" in record.getMessage() for record in caplog.records if "health check" in record.getMessage())
    # Reads still work (the store answers): only writes fail.
    assert (await AsyncHTTPClient().fetch(f"http://127.0.0.1:{http_port}/api/rooms/lobby/messages")).code == 200

    os.remove(filler)
    assert (await send(socket_, "after"))["message"] == "after"
    assert (await healthz(http_port))[0] == 200


@pytest.mark.gen_test(timeout=60)
async def test_healthz_is_503_while_redis_is_a_read_only_replica_and_200_once_a_store_succeeds(
    private_redis, http_server, http_port
):
    socket_ = await connect(http_port, "lobby")
    assert (await send(socket_, "before"))["message"] == "before"
    assert (await healthz(http_port))[0] == 200

    client = redis.from_url(private_redis.url)
    try:
        # A replica of a master that is not there: it keeps its data and answers, read-only.
        await client.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
        refused = await send(socket_, "while a replica")
        assert (refused["type"], refused["code"]) == ("error", "unavailable")
        code, body = await healthz(http_port)
        assert (code, json.loads(body)) == (503, {"status": "unavailable", "backend": "redis"})
        assert b"READONLY" not in body and str(private_redis.port).encode() not in body

        await client.execute_command("REPLICAOF", "NO", "ONE")
    finally:
        await client.aclose()
    assert (await send(socket_, "after"))["message"] == "after"
    assert (await healthz(http_port))[0] == 200
