"""What the SQL backend's own tests share: each engine in turn, with storage of the test's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tornado.ioloop

from tests.support.factories.sql import FACTORIES, MariaDBFactory, PostgreSQLFactory, SQLiteFactory

SQLFactory = SQLiteFactory | PostgreSQLFactory | MariaDBFactory


@pytest.fixture(params=sorted(FACTORIES))
def sql_factory(request: pytest.FixtureRequest, io_loop: tornado.ioloop.IOLoop) -> Iterator[SQLFactory]:
    """A factory of new databases on SQLite, PostgreSQL and MariaDB in turn (the test's id names which),
    every one of them removed after the test."""
    factory = FACTORIES[request.param]()
    yield factory
    io_loop.run_sync(factory.dispose, timeout=30)
