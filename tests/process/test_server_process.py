"""``server.py`` as a real process: config errors, an unreachable backend, and clean shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest
from tornado.httpclient import AsyncHTTPClient

from rooms.errors import ConfigError
from rooms.service.serving import event_loop_factory
from tests.support.clients import connect, raw_handshake, receive_json, wait_closed
from tests.support.processes import ServerProcess, free_port, run_server
from tests.support.waiting import eventually


@pytest.mark.parametrize(
    ("args", "config", "named"),
    [
        ((), "server:\n  hots: 0.0.0.0\n", "server.hots"),
        ((), "server:\n  port: eighty\n", "server.port"),
        ((), "limits:\n  burst: many\n", "limits.burst"),
        (("--backend", "mongodb://localhost/x"), "", "backend.url"),
        ((), "backend:\n  url: ftp://x\n", "backend.url"),
        (("--backend", "redis+sentinel://s1:26379/"), "", "backend.url"),
        ((), "surprise: {}\n", "surprise"),
        ((), "server:\n  event_loop: trio\n", "server.event_loop"),
        ((), "server:\n  allocator: tcmalloc\n", "server.allocator"),
        ((), "server:\n  trusted_proxies: [10.0.0.300]\n", "server.trusted_proxies"),
        ((), "server:\n  metrics_allowed: [everyone]\n", "server.metrics_allowed"),
        ((), "limits:\n  connections_per_address: 0\n", "limits.connections_per_address"),
        ((), "limits:\n  address_burst: lots\n", "limits.address_burst"),
        ((), "limits:\n  new_rooms_per_hour: 0\n", "limits.new_rooms_per_hour"),
        ((), "history:\n  expire_after_days: -1\n", "history.expire_after_days"),
    ],
)
def test_config_error_exits_2_with_one_line_naming_the_key(args, config, named):
    result = run_server(*args, config=config)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0]


def test_uvloop_asked_for_but_not_installed_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what an import finds when the package is missing
    with pytest.raises(ConfigError, match=r"server\.event_loop: uvloop is not installed"):
        event_loop_factory("uvloop")
    assert event_loop_factory("asyncio") is None


def test_unreadable_config_file_exits_2():
    result = run_server("--config", "/nonexistent/rooms.yaml")
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_unreachable_backend_is_retried_then_exits_1():
    port = free_port()
    result = run_server(
        "--backend", f"postgresql://postgres@127.0.0.1:{port}/test", config="backend:\n  connect_timeout: 1\n"
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()  # one readable line, and only that
    assert "backend unreachable" in line
    debug = run_server(
        "--backend",
        f"postgresql://postgres@127.0.0.1:{port}/test",
        config="backend:\n  connect_timeout: 1\nserver:\n  log_level: debug\n",
    )
    assert debug.returncode == 1
    assert "retrying" in debug.stderr


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
@pytest.mark.gen_test(timeout=30)
async def test_sigterm_sigint_and_sighup_close_sockets_with_1001_and_exit_0(signum, event_loop):
    server = ServerProcess(config=f"server:\n  event_loop: {event_loop}\n  shutdown_grace: 2\n")
    try:
        server.wait_healthy()
        ws = await connect(server.port, "lobby")
        # A peer that never answers the close frame keeps the server in its shutdown grace a while.
        silent = await raw_handshake(server.port, "/chat/lobby/")
        await ws.write_message(json.dumps({"handle": "ann", "message": "before shutdown"}))
        assert (await receive_json(ws))["message"] == "before shutdown"
        server.process.send_signal(signum)
        assert await wait_closed(ws, timeout=10) == 1001
        assert server.process.poll() is None  # still shutting down, and already refusing newcomers
        with pytest.raises(OSError):
            await connect(server.port, "lobby")
        await eventually(lambda: server.process.poll() is not None, interval=0.1, message="server.py exited")
        assert server.process.returncode == 0
        silent.close()
    finally:
        server.stop()


def test_the_listen_queue_holds_a_big_rooms_return_as_the_socket_units_do():
    """Thousands of pages come back within a second of a restart: the listening socket queues 4096
    connections (as systemd/rooms.socket's Backlog=, within the kernel's cap), not Tornado's 128."""
    server = ServerProcess()
    try:
        server.wait_healthy()
        listening = subprocess.run(
            ["ss", "-Hltn", f"sport = :{server.port}"], capture_output=True, text=True, check=True
        ).stdout.split()
        with open("/proc/sys/net/core/somaxconn") as cap:
            assert int(listening[2]) == min(4096, int(cap.read()))  # a listening socket's Send-Q: its backlog
    finally:
        server.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.gen_test(timeout=60)
async def test_a_message_sent_as_sigterm_arrives_is_echoed_and_stored_or_refused_never_stored_unheard(signum):
    server = ServerProcess("sqlite:///rooms.db", config="limits:\n  messages_per_second: 100000\n  burst: 100000\n")
    try:
        server.wait_healthy()
        ws = await connect(server.port, "lobby")
        for n in range(300):
            ws.write_message(json.dumps({"handle": "ann", "message": f"m{n}"}))
        server.process.send_signal(signum)
        echoed: list[str] = []
        while (frame := await ws.read_message()) is not None:
            reply = json.loads(frame)
            if reply["type"] == "message":
                echoed.append(reply["message"])
            else:
                assert reply["code"] == "unavailable" and "shutting down" in reply["error"], reply
        assert ws.close_code == 1001
        assert server.process.wait(timeout=20) == 0
        database = sqlite3.connect(os.path.join(server.workdir.name, "rooms.db"))
        try:
            stored = [row[0] for row in database.execute("SELECT message FROM messages ORDER BY id")]
        finally:
            database.close()
        assert stored == echoed  # nothing stored that its sender did not hear of before the close
    finally:
        server.stop()


@pytest.mark.gen_test(timeout=60)
async def test_a_room_idle_past_expire_after_days_is_removed_with_its_history_and_a_busy_one_is_kept():
    # 0.00003 days is 2.6 s: the server checks every second at the least.
    server = ServerProcess("sqlite:///rooms.db", config="history:\n  expire_after_days: 0.00003\n")
    try:
        server.wait_healthy()
        client = AsyncHTTPClient()
        base = f"{server.base_url}/api/rooms"

        async def post(room: str) -> None:
            body = json.dumps({"handle": "ann", "message": "hi"})
            await client.fetch(
                f"{base}/{room}/messages", method="POST", body=body, headers={"Content-Type": "application/json"}
            )

        async def count(room: str) -> int:
            return len(json.loads((await client.fetch(f"{base}/{room}/messages")).body)["messages"])

        await post("idle")
        await post("busy")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while await count("idle") and loop.time() < deadline:
            await post("busy")  # a message a second keeps this room
            await asyncio.sleep(1)
        assert await count("idle") == 0
        assert await count("busy") >= 2
        rows = sqlite3.connect(os.path.join(server.workdir.name, "rooms.db")).execute("SELECT label FROM rooms")
        assert [label for (label,) in rows] == ["busy"]
    finally:
        server.stop()
