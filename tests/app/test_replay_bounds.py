"""What a replay from ``?since=`` may cost: it stops when its socket goes, and on SQL its reads never wait
behind the writer."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from rooms.room.replay import REPLAY_PAGE
from tests.support.apps import app_config
from tests.support.clients import raw_handshake
from tests.support.factories.sql import SQLiteFactory, sql_backend
from tests.support.messages import post, store, store_soon
from tests.support.metrics import app_sample
from tests.support.waiting import eventually

MESSAGES = 20 * REPLAY_PAGE  # of 4 KB each


@pytest.fixture
def config():
    # A replay stalled on a socket that takes nothing is closed within two ping intervals.
    return app_config(limits={"send_buffer_bytes": 16384}, server={"ping_interval": 0.2})


@pytest.mark.gen_test(timeout=60)
async def test_a_replay_to_a_socket_that_never_reads_stops_when_the_socket_is_closed(
    http_server, http_port, app, app_backend
):
    for n in range(MESSAGES):
        await post(app.hub, "long", "ann", f"message {n} " + "x" * 4000)
    backend = app_backend
    messages_read = 0
    reading = 0
    replay = backend.replay

    async def counted(*args, **kwargs):
        nonlocal messages_read, reading
        reading += 1
        try:
            read = await replay(*args, **kwargs)
        finally:
            reading -= 1
        messages_read += len(read.page.messages)
        return read

    backend.replay = counted
    sock = await raw_handshake(http_port, "/chat/long/?since=0")  # and never reads
    # Well short of the room's 16 MB, the kernel's buffers are full, the replay waits, and the server closes
    # it as too slow.
    await eventually(lambda: app_sample(app, "rooms_slow_clients_closed_total") == 1)
    await eventually(lambda: app_sample(app, "rooms_active_rooms") == 0)
    sock.close()
    await eventually(lambda: reading == 0)  # a page still being read when it closed has come back
    # What the kernel's buffers took was read; the rest of the room, never.
    assert messages_read < MESSAGES / 2, f"{messages_read} of {MESSAGES} messages read"


@pytest.mark.gen_test(timeout=60)
async def test_sqlite_replays_and_history_are_read_while_the_writer_waits_for_the_database():
    factory = SQLiteFactory()
    url = factory.new_url()
    backend = sql_backend(url)
    await backend.start()
    blocker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        first = (await store(backend, "lobby", "ann", "before")).message
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: the writer waits for it until COMMIT
        held = store_soon(backend, "lobby", "ann", "held")
        await asyncio.sleep(0)  # the store's batch goes to the writer on the loop's next turn, ahead of the reads
        replay = await backend.replay("lobby", "0", 10)
        page = await backend.history("lobby", 10)
        assert [m.id for m in replay.page.messages] == [first.id] == [m.id for m in page.messages]
        # Both were answered while the store still waits for the lock: had they queued behind the writer, they
        # would have come back only after it, the store done or failed at the writer's busy timeout.
        assert not held.done()
        blocker.execute("COMMIT")
        assert (await held).message.message == "held"
    finally:
        blocker.close()
        await backend.close()
        await factory.dispose()
