"""``kill -9`` of a real ``server.py``: every message it echoed is in the database afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from backends.sql import SQLBackend
from tests.clients import connect
from tests.factories.sql import MariaDBFactory, PostgreSQLFactory, SQLiteFactory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACTORIES = {"sqlite": SQLiteFactory, "postgresql": PostgreSQLFactory, "mysql": MariaDBFactory}
STARTUP_SECONDS = 20
SENT = 300
KILL_AFTER_ECHOES = 200
# Rate limits out of the way: this test is about durability, one socket sends as fast as it can.
CONFIG = "limits:\n  messages_per_second: 100000\n  burst: 100000\nhistory:\n  retain_per_room: 0\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_healthy(process: subprocess.Popen[bytes], port: int) -> None:
    client = AsyncHTTPClient()
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server.py exited with {process.returncode}"
        try:
            await client.fetch(f"http://127.0.0.1:{port}/healthz", request_timeout=1)
            return
        except (HTTPClientError, OSError):
            await asyncio.sleep(0.05)
    pytest.fail(f"server.py did not answer /healthz within {STARTUP_SECONDS}s")


@pytest.mark.parametrize("kind", sorted(FACTORIES))
@pytest.mark.gen_test(timeout=120)
async def test_every_echoed_message_survives_kill_9_of_the_server(kind):
    factory = FACTORIES[kind]()
    url = factory.new_url()
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ROOMS_")}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as config:
        config.write(CONFIG)
    command = [sys.executable, "server.py", "--config", config.name, "--port", str(port), "--backend", url]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_healthy(process, port)
        socket_ = await connect(port, "durable")
        for n in range(SENT):
            await socket_.write_message(json.dumps({"handle": "ann", "message": f"m{n} 👋", "client_id": f"c{n}"}))
        echoed = []
        while len(echoed) < KILL_AFTER_ECHOES:
            frame = await asyncio.wait_for(socket_.read_message(), 10)
            assert frame is not None
            echoed.append(json.loads(frame))
        process.send_signal(signal.SIGKILL)  # with the rest of the messages still in flight
        process.wait(10)
        socket_.close()

        backend = SQLBackend(url)
        await backend.start()
        try:
            stored = (await backend.history("durable", SENT)).messages
        finally:
            await backend.close()
        by_id = {message.id: message for message in stored}
        for echo in echoed:
            assert echo["type"] == "message"
            kept = by_id[echo["id"]]
            assert (kept.message, kept.client_id, kept.timestamp) == (
                echo["message"],
                echo["client_id"],
                echo["timestamp"],
            )
        # What was stored is a prefix of what was sent, in the order it was sent: nothing lost in between.
        assert [m.client_id for m in stored] == [f"c{n}" for n in range(len(stored))]
        assert len(stored) >= KILL_AFTER_ECHOES
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        os.unlink(config.name)
        await factory.dispose()
