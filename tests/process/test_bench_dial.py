"""The load generator's dialer: each client's socket from its own loopback source, a refusal raised as
``ws_connect`` raised it (the restart benchmark counts its pages' failed tries by the error's type)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bench.dial import Dialer
from bench.sources import SPREAD


async def peers_seen(indexes: list[int]) -> list[str]:
    seen: list[str] = []

    def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peername")[0])
        writer.close()

    server = await asyncio.start_server(accepted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    dialer = Dialer(f"ws://127.0.0.1:{port}/chat/room/?features=presence&since=12", SPREAD, 10)
    for index in indexes:
        sock = await dialer.socket(index)
        assert sock.getpeername() == ("127.0.0.1", port)
        sock.close()
    while len(seen) < len(indexes):
        await asyncio.sleep(0.01)
    server.close()
    await server.wait_closed()
    return seen


def test_each_client_connects_from_its_loopback_source():
    assert asyncio.run(peers_seen([0, 5, 248, 249])) == ["127.0.0.2", "127.0.0.7", "127.0.0.250", "127.0.0.2"]


def test_a_port_where_nothing_listens_refuses_with_connection_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: refused

        async def dial() -> None:
            await Dialer(f"ws://127.0.0.1:{port}/", SPREAD, 10).socket(3)

        with pytest.raises(ConnectionRefusedError):
            asyncio.run(dial())
