"""``kill -9`` of a real ``server.py``: every message it echoed is in the database afterwards."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

from tests.support.clients import connect
from tests.support.factories.sql import FACTORIES, sql_backend
from tests.support.processes import ServerProcess

SENT = 300
KILL_AFTER_ECHOES = 200
# Rate limits out of the way: this test is about durability, one socket sends as fast as it can.
CONFIG = "limits:\n  messages_per_second: 100000\n  burst: 100000\nhistory:\n  retain_per_room: 0\n"


@pytest.mark.parametrize("kind", sorted(FACTORIES))
@pytest.mark.gen_test(timeout=120)
async def test_every_echoed_message_survives_kill_9_of_the_server(kind):
    factory = FACTORIES[kind]()
    url = factory.new_url()
    server = ServerProcess(url, config=CONFIG)
    try:
        server.wait_healthy()
        socket_ = await connect(server.port, "durable")
        for n in range(SENT):
            await socket_.write_message(json.dumps({"handle": "ann", "message": f"m{n} 👋", "client_id": f"c{n}"}))
        echoed = []
        while len(echoed) < KILL_AFTER_ECHOES:
            frame = await asyncio.wait_for(socket_.read_message(), 10)
            assert frame is not None
            echoed.append(json.loads(frame))
        server.process.send_signal(signal.SIGKILL)  # with the rest of the messages still in flight
        server.process.wait(10)
        socket_.close()

        backend = sql_backend(url)
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
        server.stop()
        await factory.dispose()
