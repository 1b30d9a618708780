"""Sockets that go away: clients vanishing mid-broadcast disturb no one (dead peers noticed by pings:
test_keepalive.py)."""

from __future__ import annotations

import asyncio
import gc
import logging
from functools import partial

import pytest

from tests.support.apps import app_config
from tests.support.clients import assert_next_is_marker, connect, raw_handshake, receive_json
from tests.support.messages import post
from tests.support.waiting import eventually


@pytest.fixture
def config():
    # Pings go on meanwhile, to the vanished peers too.
    return app_config(server={"ping_interval": 0.2})


@pytest.mark.gen_test(timeout=20)
async def test_clients_vanishing_mid_broadcast_log_no_errors(http_server, http_port, app, caplog):
    caplog.set_level(logging.WARNING)
    stayer = await connect(http_port, "lobby")
    leavers = [await raw_handshake(http_port, "/chat/lobby/") for _ in range(30)]
    await eventually(lambda: app.hub.online("lobby") >= 31)
    for n in range(200):
        await post(app.hub, "lobby", "ann", f"m{n} " + "z" * 500)
        if n % 7 == 0 and leavers:
            leavers.pop().close()  # gone without a close handshake, with frames still queued for it
            await asyncio.sleep(0)
    for sock in leavers:
        sock.close()
    received = [await receive_json(stayer) for _ in range(200)]
    assert [m["message"].split()[0] for m in received] == [f"m{n}" for n in range(200)]
    await eventually(lambda: app.hub.online("lobby") == 1, timeout=5)
    # A round trip through the room after the leavers are gone: nothing more was due to the stayer.
    await assert_next_is_marker(stayer, partial(post, app.hub, "lobby", "marker"))
    gc.collect()  # "exception was never retrieved" is logged when an abandoned future is collected
    await asyncio.sleep(0)
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or "never retrieved" in r.getMessage()]
    assert problems == []
