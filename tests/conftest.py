from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpserver
import tornado.ioloop
import tornado.web

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from backends.base import Backend  # noqa: E402
from rooms.config.model import Config  # noqa: E402
from rooms.web.app import make_app  # noqa: E402
from rooms.web.httpserver import make_http_server  # noqa: E402
from tests.support.apps import app_config, backend_settings, shut_down  # noqa: E402
from tests.support.factories import all_factories  # noqa: E402
from tests.support.scheduling import FileScheduling, run_order  # noqa: E402

FACTORIES = all_factories()
MakeBackend = Callable[..., Awaitable[Backend]]
SERVED_BACKEND = pytest.StashKey[Backend]()
TESTS = Path(__file__).parent
# A test's tier is the folder it is in; pyproject.toml registers each tier, and each backend, as a marker.
TIERS = ("unit", "contract", "app", "backends", "process", "proxy", "browser", "image")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its tier and, when it runs once per backend, with that backend's name, so that
    ``-m`` selects a tier or a backend exactly (``-m "unit or (contract and (memory or sqlite))"``)."""
    for item in items:
        tier = item.path.relative_to(TESTS).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test belongs in one of the tier folders {TIERS}")
        item.add_marker(tier)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "backend_name" in callspec.params:
            item.add_marker(callspec.params["backend_name"])
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_order(items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> FileScheduling | None:
    """``--dist loadfile`` as tests/support/scheduling.py refines it; any other ``--dist`` as xdist has it."""
    return FileScheduling(config, log) if config.getoption("dist") == "loadfile" else None


@pytest.fixture(params=sorted(FACTORIES))
def backend_name(request: pytest.FixtureRequest) -> str:
    """Every backend the contract suite knows; tests that take it run once per backend."""
    return str(request.param)


@pytest.fixture
def make_backend(backend_name: str, io_loop: tornado.ioloop.IOLoop) -> Iterator[MakeBackend]:
    """``await make_backend(retain_per_room=...)``: a started backend, closed and cleaned up afterwards."""
    factory = FACTORIES[backend_name]()
    made: list[Backend] = []

    async def make(**options: Any) -> Backend:
        options.setdefault("retain_per_room", 10000)
        backend = await factory.create(**options)
        made.append(backend)
        return backend

    yield make

    async def cleanup() -> None:
        for backend in made:
            await backend.close()
        await factory.dispose()

    io_loop.run_sync(cleanup, timeout=30)


@pytest.fixture
def config() -> Config:
    """Override in a test module (or parametrize) to change limits; defaults otherwise."""
    return app_config()


@pytest.fixture
def app(
    config: Config, io_loop: tornado.ioloop.IOLoop, request: pytest.FixtureRequest
) -> Iterator[tornado.web.Application]:
    """The application on the memory backend (fast and exact); the backends have the contract suite."""
    factory = FACTORIES["memory"]()
    backend = io_loop.run_sync(lambda: factory.create(**backend_settings(config)))
    request.node.stash[SERVED_BACKEND] = backend
    application = make_app(config, backend)
    yield application
    io_loop.run_sync(lambda: shut_down(application, backend))


@pytest.fixture
def app_on_each_backend(
    backend_name: str, config: Config, io_loop: tornado.ioloop.IOLoop, request: pytest.FixtureRequest
) -> Iterator[tornado.web.Application]:
    """The application on every backend in turn: a module runs its end-to-end tests on each with
    ``app = app_on_each_backend`` as its ``app`` fixture."""
    factory = FACTORIES[backend_name]()
    backend = io_loop.run_sync(lambda: factory.create(**backend_settings(config)))
    request.node.stash[SERVED_BACKEND] = backend
    application = make_app(config, backend)
    yield application
    io_loop.run_sync(lambda: shut_down(application, backend))
    io_loop.run_sync(factory.dispose)


@pytest.fixture
def app_backend(app: tornado.web.Application, request: pytest.FixtureRequest) -> Backend:
    """The backend the test's ``app`` serves: a test writes to it straight, as another process of the
    deployment would, or reads what it holds."""
    return request.node.stash[SERVED_BACKEND]


@pytest.fixture
def http_server(
    request: pytest.FixtureRequest, io_loop: tornado.ioloop.IOLoop, _unused_port: Any
) -> Iterator[tornado.httpserver.HTTPServer]:
    """pytest-tornado's fixture, serving the app with the HTTP server ``server.py`` uses."""
    app = request.getfixturevalue(request.config.option.app_fixture)
    server = make_http_server(app, max_body_bytes=app.max_body_bytes)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=request.config.option.async_test_timeout)
    # The sockets just closed left their rooms: their unsubscribes get to start before the loop goes.
    io_loop.run_sync(lambda: asyncio.sleep(0.01))
