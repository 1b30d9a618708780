"""A reconnect with ``?since=`` costs at most two Redis round trips before the socket is live: one to
subscribe a room this process does not serve yet (SUBSCRIBE and the stream's end, on one connection), one
to read what the client missed. In a room it already serves, the read alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import tornado.web
from redis.asyncio.connection import AbstractConnection

from rooms.web.app import make_app
from tests.support.apps import app_config, shut_down
from tests.support.clients import connect, receive_messages
from tests.support.factories.redis import RedisFactory
from tests.support.messages import post


class RoundTrips:
    """Counts turns on every redis-py connection: a send that follows an answer starts a new round trip;
    sends with no answer between them (a pipeline, commands written back to back) share one."""

    def __init__(self) -> None:
        self.count = 0
        self._answered: dict[int, bool] = {}

    def sent(self, connection: AbstractConnection) -> None:
        if self._answered.get(id(connection), True):
            self.count += 1
        self._answered[id(connection)] = False

    def answered(self, connection: AbstractConnection) -> None:
        self._answered[id(connection)] = True


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> RoundTrips:
    counter = RoundTrips()
    send, read = AbstractConnection.send_packed_command, AbstractConnection.read_response

    async def counted_send(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        counter.sent(self)
        await send(self, *args, **kwargs)

    async def counted_read(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        response = await read(self, *args, **kwargs)
        if response is not None:  # None: a read that timed out while nothing came
            counter.answered(self)
        return response

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted_send)
    monkeypatch.setattr(AbstractConnection, "read_response", counted_read)
    return counter


@pytest.fixture
def app(io_loop: Any) -> Iterator[tornado.web.Application]:
    factory = RedisFactory()
    # Pings and counter refreshes only every minute, so nothing else talks to Redis during a test.
    backend = io_loop.run_sync(lambda: factory.create(ping_interval=60))
    application = make_app(app_config(), backend)
    yield application
    io_loop.run_sync(lambda: shut_down(application, backend))
    io_loop.run_sync(factory.dispose)


@pytest.mark.gen_test
async def test_a_reconnect_to_a_room_new_to_this_process_costs_two_round_trips(
    app, http_server, http_port, round_trips
):
    stored = [(await post(app.hub, "lobby", "ann", f"m{n}")).message for n in range(3)]
    round_trips.count = 0
    ws = await connect(http_port, "lobby", since=stored[0].id)
    assert [m["message"] for m in await receive_messages(ws, 2)] == ["m1", "m2"]
    assert round_trips.count <= 2


@pytest.mark.gen_test
async def test_a_reconnect_to_a_room_this_process_serves_costs_one_round_trip(app, http_server, http_port, round_trips):
    stored = [(await post(app.hub, "lobby", "ann", f"m{n}")).message for n in range(3)]
    await connect(http_port, "lobby")
    round_trips.count = 0
    ws = await connect(http_port, "lobby", since=stored[1].id)
    assert [m["message"] for m in await receive_messages(ws, 1)] == ["m2"]
    assert round_trips.count == 1
