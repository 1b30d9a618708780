"""Sockets that go away: dead peers are noticed, and clients vanishing mid-broadcast disturb no one."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from tests.clients import connect, raw_handshake, receive_json
from tests.conftest import app_config
from tests.messages import post


@pytest.fixture
def config():
    return app_config(server={"ping_interval": 0.2})


@pytest.mark.gen_test(timeout=20)
async def test_peer_that_never_answers_pings_is_dropped(http_server, http_port, app):
    silent = await raw_handshake(http_port, "/chat/lobby/")
    try:
        while app.hub.online("lobby") < 1:
            await asyncio.sleep(0.01)
        # A missed pong starts the close handshake, which Tornado gives up on after 5 seconds.
        for _ in range(300):
            if app.hub.online("lobby") == 0:
                break
            await asyncio.sleep(0.05)
        assert app.hub.online("lobby") == 0
    finally:
        silent.close()


@pytest.mark.gen_test(timeout=10)
async def test_live_client_answers_pings_and_stays(http_server, http_port, app):
    ws = await connect(http_port, "lobby")
    await asyncio.sleep(1)
    await post(app.hub, "lobby", "ann", "still connected")
    assert (await receive_json(ws))["message"] == "still connected"


@pytest.mark.gen_test(timeout=20)
async def test_clients_vanishing_mid_broadcast_log_no_errors(http_server, http_port, app, caplog):
    caplog.set_level(logging.WARNING)
    stayer = await connect(http_port, "lobby")
    leavers = [await raw_handshake(http_port, "/chat/lobby/") for _ in range(30)]
    while app.hub.online("lobby") < 31:
        await asyncio.sleep(0.01)
    for n in range(200):
        await post(app.hub, "lobby", "ann", f"m{n} " + "z" * 500)
        if n % 7 == 0 and leavers:
            leavers.pop().close()  # gone without a close handshake, with frames still queued for it
            await asyncio.sleep(0)
    for sock in leavers:
        sock.close()
    received = [await receive_json(stayer) for _ in range(200)]
    assert [m["message"].split()[0] for m in received] == [f"m{n}" for n in range(200)]
    for _ in range(100):
        if app.hub.online("lobby") == 1:
            break
        await asyncio.sleep(0.05)
    assert app.hub.online("lobby") == 1
    await asyncio.sleep(0.2)
    gc.collect()  # "exception was never retrieved" is logged when an abandoned future is collected
    await asyncio.sleep(0)
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or "never retrieved" in r.getMessage()]
    assert problems == []
