"""A socket that replays history goes live only once delivery here has caught up with what it replayed.

A store's history can show a message a moment before the message is delivered to this process (Redis
pub/sub, the SQL writer handing a commit back to the loop). The backend here makes that moment as long
as the test likes: it stores at once and delivers only when told.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import tornado.ioloop
import tornado.web

from backends.base import NewMessage, StoredMessage, StoreResult
from backends.memory import MemoryBackend
from rooms.web.app import make_app
from tests.support.apps import app_config, shut_down
from tests.support.clients import connect, receive_json
from tests.support.messages import post


class LateDelivery(MemoryBackend):
    """Stores at once; delivers what it stored only on ``deliver_held``."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[StoredMessage] = []
        self.delivered_through = "0"

    def store_soon(self, message: NewMessage) -> asyncio.Future[StoreResult]:
        target, self._target = self._target, None
        try:
            stored = super().store_soon(message)
        finally:
            self._target = target
        self.held.append(stored.result().message)
        return stored

    async def subscribe(self, room: str) -> str:
        await super().subscribe(room)
        return self.delivered_through

    def deliver_held(self) -> None:
        held, self.held = self.held, []
        for message in held:
            assert self._target is not None
            self._target.deliver(message)
            self.delivered_through = message.id


@pytest.fixture
def backend() -> LateDelivery:
    return LateDelivery()


@pytest.fixture
def app(backend: LateDelivery, io_loop: tornado.ioloop.IOLoop) -> Iterator[tornado.web.Application]:
    io_loop.run_sync(backend.start)
    application = make_app(app_config(), backend)
    yield application
    io_loop.run_sync(lambda: shut_down(application, backend))


@pytest.mark.gen_test
async def test_a_message_replayed_before_it_is_delivered_reaches_the_socket_once(app, backend, http_server, http_port):
    first = (await post(app.hub, "lobby", "ann", "first")).message
    backend.deliver_held()
    ann = await connect(http_port, "lobby")
    await post(app.hub, "lobby", "ann", "read before delivered")
    bob = await connect(http_port, "lobby", since=first.id)
    replayed = await receive_json(bob)
    assert replayed["message"] == "read before delivered"
    backend.deliver_held()  # now it reaches this process: bob goes live, without it a second time
    await post(app.hub, "lobby", "ann", "live")
    backend.deliver_held()
    assert [(await receive_json(ann))["message"] for _ in range(2)] == ["read before delivered", "live"]
    assert (await receive_json(bob))["message"] == "live"
