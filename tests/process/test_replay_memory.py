"""What replays to sockets that never read cost ``server.py``, and what stays once they are gone.

A room of large messages on SQLite, and rounds of sockets from one address asking it all with
``?since=0`` and reading nothing: the process's resident memory is sampled while they are open and after
they close. A replay written a page of 200 messages at once cost megabytes per socket, and the memory
freed stayed with the process, round after round.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import urllib.request

import pytest

from tests.support.clients import raw_handshake
from tests.support.factories.sql import sql_backend
from tests.support.messages import new_message
from tests.support.processes import ServerProcess

SEND_BUFFER = 1 << 20  # the default
SOCKETS = 50  # per round, as many as one address may open
ROUNDS = 6
MESSAGES = 600
TEXT = 16000
MIB = 1 << 20


def resident_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_sockets(server: ServerProcess) -> int:
    with urllib.request.urlopen(f"{server.base_url}/metrics", timeout=5) as answer:
        found = re.search(rb"^rooms_connections (\S+)$", answer.read(), re.MULTILINE)
    assert found is not None
    return int(float(found.group(1)))


async def seed(path: str) -> None:
    backend = sql_backend(f"sqlite:///{path}")
    await backend.start()
    try:
        await asyncio.gather(
            *(backend.store_soon(new_message("big", "ann", f"m{n} " + "x" * TEXT)) for n in range(MESSAGES))
        )
    finally:
        await backend.close()


async def a_round(server: ServerProcess) -> tuple[int, int]:
    """The most the process held while a round's sockets were open, and what it held once they were gone."""
    pid = server.process.pid
    sockets = [await raw_handshake(server.port, "/chat/big/?since=0") for _ in range(SOCKETS)]
    peak = 0
    for _ in range(20):  # a second: each replay has stalled (or its socket was closed) well before
        peak = max(peak, resident_bytes(pid))
        await asyncio.sleep(0.05)
    for sock in sockets:
        sock.close()
    deadline = time.monotonic() + 20
    while open_sockets(server) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert open_sockets(server) == 0
    return peak, resident_bytes(pid)


@pytest.mark.gen_test(timeout=600)
async def test_replays_to_sockets_that_never_read_cost_about_their_send_buffer_and_nothing_stays(tmp_path):
    path = str(tmp_path / "rooms.db")
    await seed(path)
    config = (
        f"limits:\n  max_message_chars: {TEXT + 100}\n  connections_per_address: {SOCKETS}\n"
        "server:\n  ping_interval: 0\n"  # nothing but the replay's own bound holds them back
    )
    server = ServerProcess(f"sqlite:///{os.path.abspath(path)}", config=config)
    try:
        server.wait_healthy()
        start = resident_bytes(server.process.pid)
        rounds = [await a_round(server) for _ in range(ROUNDS)]
    finally:
        server.stop()
    report = ", ".join(f"{peak // MIB}/{after // MIB}" for peak, after in rounds)
    # The process's own first use of everything (SQLite's cache, the code paths) aside, each socket holds
    # at most about its send buffer.
    assert max(peak for peak, _ in rounds) - start < SOCKETS * SEND_BUFFER + 50 * MIB, (
        f"from {start // MIB} MiB, peak/after each round in MiB: {report}"
    )
    # What the first round left is all that stays: later rounds reuse it.
    assert rounds[-1][1] - rounds[0][1] < 16 * MIB, f"from {start // MIB} MiB, peak/after in MiB: {report}"
