"""A client that has connected receives every message sent after that, on every backend, in a room this
process has never seen as well as in one it already serves."""

from __future__ import annotations

import pytest
import tornado.web

from tests.support.clients import connect, receive_json, send_json

ROOMS = 15  # the race this guards against showed in 2 to 9 of 30 fresh rooms


@pytest.fixture
def app(app_on_each_backend: tornado.web.Application) -> tornado.web.Application:
    return app_on_each_backend


@pytest.mark.gen_test(timeout=60)
async def test_a_message_sent_right_after_another_client_connected_reaches_it(backend_name, http_server, http_port):
    for number in range(ROOMS):
        room = f"fresh-{number}"
        ann = await connect(http_port, room)
        bob = await connect(http_port, room)
        await send_json(ann, {"handle": "ann", "message": f"hello {number}"})
        for ws in (ann, bob):
            assert (await receive_json(ws))["message"] == f"hello {number}"
        # And once more in the room this process now serves: a third client joins it live.
        cat = await connect(http_port, room)
        await send_json(bob, {"handle": "bob", "message": f"again {number}"})
        for ws in (ann, bob, cat):
            assert (await receive_json(ws))["message"] == f"again {number}"
        for ws in (ann, bob, cat):
            ws.close()
