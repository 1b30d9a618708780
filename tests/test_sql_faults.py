"""The SQL backend when its database goes away and comes back, through a loopback proxy the test cuts.

The shared PostgreSQL and MariaDB keep running; only this test's path to them is cut.
"""

from __future__ import annotations

import json
import os
import tempfile

import pytest
from tornado.httpclient import AsyncHTTPClient

from backends.sql import SQLBackend
from rooms.app import make_app
from backends.errors import BackendUnavailable
from tests.clients import connect, receive_json, send_json, wait_closed
from tests.conftest import app_config
from tests.factories.sql import MariaDBFactory, PostgreSQLFactory
from tests.tcp_proxy import TCPProxy
from tests.test_backend_contract import Recorder
from tests.messages import store

SERVERS = {"postgresql": (PostgreSQLFactory, 5432), "mysql": (MariaDBFactory, 3306)}


@pytest.mark.parametrize("kind", sorted(SERVERS))
@pytest.mark.gen_test(timeout=60)
async def test_cut_database_fails_senders_and_health_then_recovers_without_restart(kind):
    factory_class, port = SERVERS[kind]
    factory = factory_class()
    proxy = await TCPProxy("127.0.0.1", port).start()
    backend = SQLBackend(factory.new_url(port=proxy.port))
    try:
        await backend.start()
        recorder = Recorder()
        backend.set_delivery_target(recorder)
        await backend.subscribe("lobby")
        before = (await store(backend, "lobby", "ann", "before", "c-1")).message
        await backend.history("lobby", 10)  # a reader connection is open too

        proxy.cut()
        with pytest.raises(BackendUnavailable):
            await store(backend, "lobby", "ann", "while cut", "c-2")
        with pytest.raises(BackendUnavailable) as health:
            await backend.health()
        assert kind in str(health.value)
        with pytest.raises(BackendUnavailable):
            await backend.history("lobby", 10)
        with pytest.raises(BackendUnavailable):
            await store(backend, "lobby", "ann", "still cut", "c-3")

        proxy.restore()
        await backend.health()
        after = (await store(backend, "lobby", "ann", "after", "c-4")).message
        resent = await store(backend, "lobby", "ann", "before", "c-1")
        assert resent.duplicate and resent.message == before
        history = (await backend.history("lobby", 10)).messages
        assert [m.message for m in history] == ["before", "after"]
        await recorder.wait_for(2)
        assert recorder.delivered == [before, after]
    finally:
        await backend.close()
        await proxy.close()
        await factory.dispose()


@pytest.mark.parametrize("kind", sorted(SERVERS))
@pytest.mark.gen_test(timeout=60)
async def test_idle_connections_killed_while_idle_do_not_fail_the_next_store(kind):
    factory_class, port = SERVERS[kind]
    factory = factory_class()
    proxy = await TCPProxy("127.0.0.1", port).start()
    backend = SQLBackend(factory.new_url(port=proxy.port))
    try:
        await backend.start()
        await store(backend, "lobby", "ann", "first", None)
        await backend.history("lobby", 10)
        proxy.cut()  # every open connection dies, as when the server restarts between two messages
        proxy.restore()
        await store(backend, "lobby", "ann", "second", None)
        assert [m.message for m in (await backend.history("lobby", 10)).messages] == ["first", "second"]
        await backend.health()
    finally:
        await backend.close()
        await proxy.close()
        await factory.dispose()


@pytest.mark.parametrize("kind", sorted(SERVERS))
@pytest.mark.gen_test(timeout=60)
async def test_start_raises_unavailable_when_the_database_cannot_be_reached(kind):
    factory_class, port = SERVERS[kind]
    factory = factory_class()
    proxy = await TCPProxy("127.0.0.1", port).start()
    proxy.cut()
    backend = SQLBackend(factory.new_url(port=proxy.port))
    try:
        with pytest.raises(BackendUnavailable, match=kind):
            await backend.start()
    finally:
        await backend.close()
        await proxy.close()
        await factory.dispose()


@pytest.mark.gen_test(timeout=30)
async def test_sqlite_start_raises_unavailable_when_the_file_cannot_be_opened():
    with tempfile.TemporaryDirectory() as directory:
        backend = SQLBackend(f"sqlite:///{os.path.join(directory, 'missing', 'rooms.db')}")
        with pytest.raises(BackendUnavailable, match="sqlite"):
            await backend.start()
        await backend.close()
        with pytest.raises(BackendUnavailable):
            await store(backend, "lobby", "ann", "after close", None)


@pytest.fixture(params=sorted(SERVERS))
def proxied_server(request, io_loop):
    """A SQL backend whose database is reached through a proxy the test cuts: (backend, proxy)."""
    factory_class, port = SERVERS[request.param]
    factory = factory_class()
    proxy = io_loop.run_sync(TCPProxy("127.0.0.1", port).start)
    backend = SQLBackend(factory.new_url(port=proxy.port))
    io_loop.run_sync(backend.start)
    yield request.param, backend, proxy

    async def cleanup() -> None:
        await backend.close()
        await proxy.close()
        await factory.dispose()

    io_loop.run_sync(cleanup, timeout=30)


@pytest.fixture
def app(proxied_server):
    """The application on the proxied SQL backend (this module's tests take the database away)."""
    _, backend, _ = proxied_server
    return make_app(app_config(), backend)


@pytest.mark.gen_test(timeout=60)
async def test_server_keeps_running_while_the_database_is_away_and_serves_again_after(
    proxied_server, http_server, http_port
):
    kind, _, proxy = proxied_server
    client = AsyncHTTPClient()
    socket_ = await connect(http_port, "lobby")
    await send_json(socket_, {"handle": "ann", "message": "before", "client_id": "a"})
    assert (await receive_json(socket_))["message"] == "before"

    proxy.cut()
    await send_json(socket_, {"handle": "ann", "message": "while away", "client_id": "b"})
    refused = await receive_json(socket_)
    assert (refused["type"], refused["code"]) == ("error", "unavailable")
    health = await client.fetch(f"http://127.0.0.1:{http_port}/healthz", raise_error=False)
    assert health.code == 503
    body = json.loads(health.body)
    assert body["backend"] == kind and kind in body["error"]
    page = await client.fetch(f"http://127.0.0.1:{http_port}/lobby/", raise_error=False)
    assert page.code == 503
    api = await client.fetch(f"http://127.0.0.1:{http_port}/api/rooms/lobby/messages", raise_error=False)
    assert api.code == 503 and "unavailable" in json.loads(api.body)["error"]
    # A socket that needs the database to join (a replay) is closed with 1013; one that needs nothing of
    # it joins, and hears what is stored once it is back.
    late = await connect(http_port, "lobby", since="0")
    assert await wait_closed(late) == 1013
    newcomer = await connect(http_port, "never-seen")

    proxy.restore()
    health = await client.fetch(f"http://127.0.0.1:{http_port}/healthz", raise_error=False)
    assert health.code == 200
    await send_json(socket_, {"handle": "ann", "message": "while away", "client_id": "b"})
    echoed = await receive_json(socket_)
    assert (echoed["message"], echoed["client_id"]) == ("while away", "b")
    await send_json(newcomer, {"handle": "bob", "message": "back"})
    assert (await receive_json(newcomer))["message"] == "back"
    newcomer.close()
    socket_.close()
