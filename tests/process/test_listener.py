"""``server.py`` at its file descriptor limit: accept pauses, and the connections it has are served."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket

import pytest

from tests.support.clients import connect, receive_json
from tests.support.processes import ServerProcess
from tests.support.waiting import eventually

OPEN_FILES = 64
IDLE_CONNECTIONS = 100  # well past what 64 descriptors leave for connections, and within the listen queue


def limit_open_files() -> None:
    # The hard limit too: the server lifts its soft limit to the hard one at start.
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


def cpu_seconds(pid: int) -> float:
    """User plus system time the process has used so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of proc(5); fields[0] here is field 3, the state.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def round_trip(ws, text: str) -> None:
    await ws.write_message(json.dumps({"handle": "ann", "message": text}))
    assert (await receive_json(ws, timeout=5))["message"] == text


@pytest.mark.gen_test(timeout=60)
async def test_out_of_descriptors_pauses_accept_logs_once_and_keeps_serving():
    server = ServerProcess(preexec_fn=limit_open_files)
    idle: list[socket.socket] = []
    try:
        server.wait_healthy()
        first = await connect(server.port, "lobby")
        await round_trip(first, "before the limit")

        for _ in range(IDLE_CONNECTIONS):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        await eventually(lambda: "Too many open files" in server.log(), message=server.log)

        await round_trip(first, "at the limit")
        before = cpu_seconds(server.process.pid)
        await asyncio.sleep(3)  # a span to measure over, not a wait for something to happen
        spent = cpu_seconds(server.process.pid) - before
        assert spent < 0.3, f"{spent:.2f}s of CPU in 3 idle seconds: accept is spinning"
        await round_trip(first, "still at the limit")
        about_it = [line for line in server.log().splitlines() if "Too many open files" in line]
        assert len(about_it) <= 2, server.log()[-3000:]

        for sock in idle:
            sock.close()
        idle.clear()
        newcomer = await connect(server.port, "lobby")
        await round_trip(newcomer, "after the limit")
    finally:
        for sock in idle:
            sock.close()
        server.stop()
