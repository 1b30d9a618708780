"""The SQL backend's own faults, through a loopback proxy the test cuts (the shared PostgreSQL and MariaDB
keep running; only this test's path to them is cut). The outage every store shares is in
test_store_outage.py."""

from __future__ import annotations

import os
import tempfile

import pytest

from backends.errors import BackendRefused, BackendUnavailable
from tests.support.factories.sql import MARIADB, POSTGRESQL, MariaDBFactory, PostgreSQLFactory, sql_backend
from tests.support.messages import store
from tests.support.tcp_proxy import TCPProxy

SERVERS = {"postgresql": (PostgreSQLFactory, POSTGRESQL), "mysql": (MariaDBFactory, MARIADB)}


@pytest.mark.parametrize("kind", sorted(SERVERS))
@pytest.mark.gen_test(timeout=60)
async def test_idle_connections_killed_while_idle_do_not_fail_the_next_store(kind):
    factory_class, server = SERVERS[kind]
    factory = factory_class()
    proxy = await TCPProxy(server["host"], server["port"]).start()
    backend = sql_backend(factory.new_url(host="127.0.0.1", port=proxy.port))
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


@pytest.mark.gen_test(timeout=30)
async def test_sqlite_start_refuses_a_file_that_cannot_be_opened():
    with tempfile.TemporaryDirectory() as directory:
        backend = sql_backend(f"sqlite:///{os.path.join(directory, 'missing', 'rooms.db')}")
        # A directory that is not there is not mended by retrying: refused at once (exit 2 in server.py).
        with pytest.raises(BackendRefused, match="does not exist"):
            await backend.start()
        await backend.close()
        with pytest.raises(BackendUnavailable):
            await store(backend, "lobby", "ann", "after close", None)
