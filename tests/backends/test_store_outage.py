"""A store that goes away and comes back, on PostgreSQL, MariaDB and Redis alike: the shared services keep
running, and a loopback proxy the test cuts stands between the backend and them.

While it is away senders get ``unavailable`` (nothing is silently dropped), health, pages and the API
answer 503; once it is back everything is served again without a restart, nothing lost, nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient

from backends.base import Backend
from backends.errors import BackendUnavailable
from backends.redis.backend import RedisBackend
from rooms.web.app import make_app
from tests.support.apps import app_config, stop_hub
from tests.support.clients import connect, receive_json, send_json, wait_closed
from tests.support.factories.redis import REDIS_URL, delete_prefix, unique_prefix
from tests.support.factories.sql import MARIADB, POSTGRESQL, MariaDBFactory, PostgreSQLFactory, sql_backend
from tests.support.messages import store
from tests.support.metrics import backend_sample
from tests.support.recorder import Recorder
from tests.support.redis import redis_address, require_redis, through_proxy
from tests.support.tcp_proxy import TCPProxy
from tests.support.waiting import eventually


async def nothing_to_wait_for(backend: Backend, up: bool) -> None:
    """A SQL backend tries its database at every call: it has nothing to notice first."""


async def subscriber_is(backend: Backend, up: bool) -> None:
    """The Redis backend tells from its pub/sub connection whether Redis is there."""
    assert isinstance(backend, RedisBackend)
    await eventually(lambda: backend_sample(backend, "rooms_redis_pubsub_up") == float(up), timeout=30)


@dataclass
class ProxiedStore:
    """A store reached through ``proxy``, and how it differs from the others."""

    kind: str  # the backend's kind, named by /healthz
    mentions: str  # what its "unavailable" errors name
    proxy: TCPProxy
    backend: Callable[[], Backend]  # a new backend reaching the store through the proxy
    # A backend of another process reaching the store directly (it goes on storing while this one is
    # cut), where processes share a store; SQL serves one process.
    direct: Callable[[], Backend] | None
    noticed: Callable[[Backend, bool], Awaitable[None]]  # wait until the backend has noticed up or down
    # Whether a socket joins a room new to the process while the store is away: Redis subscribes to the
    # room through Redis, so there the join waits for it.
    joins_while_away: bool
    dispose: Callable[[], Awaitable[Any]]


async def proxied_sql(kind: str) -> ProxiedStore:
    factory, server = {"postgresql": (PostgreSQLFactory(), POSTGRESQL), "mysql": (MariaDBFactory(), MARIADB)}[kind]
    proxy = await TCPProxy(server["host"], server["port"]).start()
    url = factory.new_url(host="127.0.0.1", port=proxy.port)
    return ProxiedStore(
        kind=kind,
        mentions=kind,
        proxy=proxy,
        backend=lambda: sql_backend(url),
        direct=None,
        noticed=nothing_to_wait_for,
        joins_while_away=True,
        dispose=factory.dispose,
    )


async def proxied_redis() -> ProxiedStore:
    await require_redis()
    prefix = unique_prefix()
    proxy = await TCPProxy(*redis_address()).start()
    url = through_proxy(proxy.port)
    return ProxiedStore(
        kind="redis",
        mentions="Redis",
        proxy=proxy,
        backend=lambda: RedisBackend(url, key_prefix=prefix),
        direct=lambda: RedisBackend(REDIS_URL, key_prefix=prefix),
        noticed=subscriber_is,
        joins_while_away=False,
        dispose=lambda: delete_prefix(REDIS_URL, prefix),
    )


@pytest.fixture(params=["postgresql", "mysql", "redis"])
def outage(request, io_loop):
    made = io_loop.run_sync(lambda: proxied_redis() if request.param == "redis" else proxied_sql(request.param))
    yield made

    async def cleanup() -> None:
        await made.proxy.close()
        await made.dispose()

    io_loop.run_sync(cleanup, timeout=30)


@pytest.mark.gen_test(timeout=60)
async def test_start_raises_unavailable_when_the_store_cannot_be_reached(outage):
    outage.proxy.cut()
    backend = outage.backend()
    try:
        with pytest.raises(BackendUnavailable, match=outage.mentions):
            await backend.start()
    finally:
        await backend.close()


@pytest.mark.gen_test(timeout=60)
async def test_cut_store_fails_stores_and_health_then_recovers_without_restart(outage):
    backend = outage.backend()
    direct = outage.direct() if outage.direct else None
    try:
        await backend.start()
        if direct:
            await direct.start()
        recorder = Recorder()
        backend.set_delivery_target(recorder)
        await backend.subscribe("lobby")
        before = (await store(backend, "lobby", "ann", "before", "c-1")).message
        await backend.history("lobby", 10)  # a reader connection is open too

        outage.proxy.cut()
        with pytest.raises(BackendUnavailable):
            await store(backend, "lobby", "ann", "while cut", "c-2")
        await outage.noticed(backend, False)
        with pytest.raises(BackendUnavailable, match=outage.mentions):
            await backend.health()
        with pytest.raises(BackendUnavailable):
            await backend.history("lobby", 10)
        with pytest.raises(BackendUnavailable):
            await store(backend, "lobby", "ann", "still cut", "c-3")
        during = [(await store(direct, "lobby", "bob", "stored elsewhere meanwhile", None)).message] if direct else []

        outage.proxy.restore()
        await outage.noticed(backend, True)
        await backend.health()
        after = (await store(backend, "lobby", "ann", "after", "c-4")).message
        resent = await store(backend, "lobby", "ann", "before", "c-1")
        assert resent.duplicate and resent.message == before
        expected = [before, *during, after]
        await recorder.wait_for(len(expected), timeout=20)
        assert recorder.delivered == expected
        assert (await backend.history("lobby", 10)).messages == expected
    finally:
        await backend.close()
        if direct:
            await direct.close()


@pytest.fixture
def proxied_backend(outage, io_loop):
    backend = outage.backend()
    io_loop.run_sync(backend.start)
    yield backend
    io_loop.run_sync(backend.close, timeout=30)


@pytest.fixture
def app(proxied_backend, io_loop):
    """The application on the proxied backend (this module's tests take the store away)."""
    application = make_app(app_config(), proxied_backend)
    yield application
    io_loop.run_sync(lambda: stop_hub(application.hub), timeout=30)


async def fetch(port: int, path: str) -> tuple[int, Any]:
    response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}{path}", raise_error=False)
    is_json = response.headers.get("Content-Type", "").startswith("application/json")
    return response.code, json.loads(response.body) if is_json else response.body


@pytest.mark.gen_test(timeout=60)
async def test_server_keeps_running_while_the_store_is_away_and_serves_again_after(
    outage, proxied_backend, http_server, http_port
):
    socket_ = await connect(http_port, "lobby")
    await send_json(socket_, {"handle": "ann", "message": "before", "client_id": "a"})
    assert (await receive_json(socket_))["message"] == "before"

    outage.proxy.cut()
    await send_json(socket_, {"handle": "ann", "message": "while away", "client_id": "b"})
    refused = await receive_json(socket_)
    assert (refused["type"], refused["code"]) == ("error", "unavailable")
    await outage.noticed(proxied_backend, False)
    code, health = await fetch(http_port, "/healthz")
    assert (code, health) == (503, {"status": "unavailable", "backend": outage.kind})  # the reason goes to the log
    assert (await fetch(http_port, "/lobby/"))[0] == 503
    code, api = await fetch(http_port, "/api/rooms/lobby/messages")
    assert code == 503 and "unavailable" in api["error"]
    # A socket that needs the store to join (a replay) is closed with 1013; one that needs nothing of it
    # joins, and hears what is stored once it is back (where joining a new room needs the store, it joins
    # once the store is back).
    late = await connect(http_port, "lobby", since="0")
    assert await wait_closed(late) == 1013
    newcomer = await connect(http_port, "never-seen") if outage.joins_while_away else None

    outage.proxy.restore()
    await outage.noticed(proxied_backend, True)
    # The store answers again, but the last store failed: health waits for one that succeeds.
    assert (await fetch(http_port, "/healthz"))[0] == 503
    await send_json(socket_, {"handle": "ann", "message": "while away", "client_id": "b"})
    echoed = await receive_json(socket_)
    assert (echoed["message"], echoed["client_id"]) == ("while away", "b")

    # The echo comes by the room's delivery (on Redis over pub/sub), which may be read before the store's
    # own answer on its connection: health turns once that answer has been read.
    async def healthy() -> bool:
        return (await fetch(http_port, "/healthz"))[0] == 200

    await eventually(healthy, timeout=10, message="/healthz still answers 503 after a message was stored")
    newcomer = newcomer or await connect(http_port, "never-seen")
    await send_json(newcomer, {"handle": "bob", "message": "back"})
    assert (await receive_json(newcomer))["message"] == "back"
    code, api = await fetch(http_port, "/api/rooms/lobby/messages")
    assert code == 200 and [m["message"] for m in api["messages"]] == ["before", "while away"]
    newcomer.close()
    socket_.close()


def backend_up(exposition: bytes) -> float:
    [value] = [
        sample.value
        for family in text_string_to_metric_families(exposition.decode())
        for sample in family.samples
        if sample.name == "rooms_backend_up"
    ]
    return value


@pytest.mark.gen_test(timeout=60)
async def test_metrics_say_the_backend_is_down_while_it_is_away(outage, proxied_backend, http_server, http_port):
    assert backend_up((await fetch(http_port, "/metrics"))[1]) == 1
    outage.proxy.cut()
    await outage.noticed(proxied_backend, False)
    code, exposition = await fetch(http_port, "/metrics")
    assert code == 200 and backend_up(exposition) == 0  # the metrics are still there to say so
    outage.proxy.restore()
    await outage.noticed(proxied_backend, True)
    assert backend_up((await fetch(http_port, "/metrics"))[1]) == 1
