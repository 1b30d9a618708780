"""A socket too slow for a frame gets no part of it without the rest: what it reads stays a valid stream of
whole frames, then the close (1013)."""

from __future__ import annotations

import gc
import json
import socket

import pytest

from rooms.web.chat_socket import ChatSocket
from tests.support.apps import app_config
from tests.support.clients import CLOSE, TEXT, raw_handshake, read_until_closed
from tests.support.messages import post
from tests.support.waiting import eventually

SEND_BUFFER = 16384
BIG = 60000  # characters of one frame far over the send buffer
ROOM = "wide"


@pytest.fixture
def config():
    return app_config(limits={"send_buffer_bytes": SEND_BUFFER, "max_message_chars": BIG, "max_frame_bytes": 65536})


@pytest.mark.gen_test(timeout=30)
async def test_a_frame_that_overflows_the_send_buffer_is_sent_whole_before_the_close(http_server, http_port, app):
    sock = await raw_handshake(http_port, f"/chat/{ROOM}/")  # reads nothing until the end
    await eventually(lambda: app.hub.fanout.online(ROOM) == 1)
    (chat_socket,) = [o for o in gc.get_objects() if isinstance(o, ChatSocket) and o.site is app.deps["site"]]
    # The kernel takes the head of the frame and no more: what is left is over the send buffer.
    chat_socket.connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    await post(app.hub, ROOM, "ann", "x" * BIG)
    try:
        frames = await read_until_closed(sock)
    finally:
        sock.close()
    texts = [json.loads(payload)["message"] for opcode, payload in frames if opcode == TEXT]
    assert texts == ["x" * BIG]
    codes = [int.from_bytes(payload[:2], "big") for opcode, payload in frames if opcode == CLOSE]
    assert codes == [1013]
