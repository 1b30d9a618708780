"""MariaDB searched without its FULLTEXT index, as rooms does on a server whose ``innodb_ft_min_token_size`` or
``innodb_ft_max_token_size`` would leave words out of it: ``LIKE`` on the tokens finds exactly what the index
would (the token sizes cannot be changed on a running server, so the reader is told to do without)."""

from __future__ import annotations

import asyncio

import pytest

from backends.search import SearchQuery
from backends.sql.database import RoomsDatabase, open_database
from backends.sql.search import SearchReader
from backends.sql.tables import build_schema
from tests.support.factories.sql import MariaDBFactory, sql_backend
from tests.support.messages import store

TEXTS = ["Hello World", "hello there, world!", "a cat sat", "concatenate the category", "of in the", "Straße"]


@pytest.fixture
def factory(io_loop):
    made = MariaDBFactory()
    yield made
    io_loop.run_sync(made.dispose, timeout=30)


@pytest.mark.gen_test(timeout=60)
async def test_like_on_the_tokens_finds_what_the_fulltext_index_finds(factory):
    url = factory.new_url()
    backend = sql_backend(url)
    await backend.start()
    try:
        for text in TEXTS:
            await store(backend, "lobby", "ann", text)
        await store(backend, "other", "bob", "hello world cat")
        database = open_database(url)
        with_index = SearchReader(RoomsDatabase(database, build_schema(database), "mysql"), fulltext=True)
        without = SearchReader(RoomsDatabase(database, build_schema(database), "mysql"), fulltext=False)

        def both(q: str) -> list[list[str]]:
            query = SearchQuery.parse(q)
            return [
                [message.message for message in reader.search("lobby", query, 10, None).messages]
                for reader in (with_index, without)
            ]

        def compare() -> None:
            try:
                for q, expected in [
                    ("hello", [TEXTS[1], TEXTS[0]]),
                    ("world hel", [TEXTS[1], TEXTS[0]]),
                    ("cat ", [TEXTS[2]]),
                    ("cat", [TEXTS[3], TEXTS[2]]),
                    ("of the i", [TEXTS[4]]),
                    ("STRASSE", [TEXTS[5]]),
                    ("nothing", []),
                ]:
                    assert both(q) == [expected, expected], q
            finally:
                database.close()

        await asyncio.to_thread(compare)
    finally:
        await backend.close()
