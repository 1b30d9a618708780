"""What the contract's state machine (test_backend_stateful.py) found, each pinned as a plain test on every
backend factory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from backends.base import Backend
from tests.support.factories import all_factories
from tests.support.messages import new_message, store

FACTORIES = all_factories()
RETAIN_ALL = 10000  # the default
RETAIN_FEW = 5
WAIT_SECONDS = 5  # for what the backend under test does in the background (pruning)


def run_on(backend_name: str, retain: int, scenario: Callable[[Backend], Awaitable[None]]) -> None:
    loop = asyncio.new_event_loop()
    factory = FACTORIES[backend_name]()
    backend: Backend | None = None
    try:
        backend = loop.run_until_complete(factory.create(retain_per_room=retain))
        loop.run_until_complete(scenario(backend))
    finally:
        if backend is not None:
            loop.run_until_complete(backend.close())
        loop.run_until_complete(factory.dispose())
        loop.close()


def test_replay_from_the_newest_pruned_message_reports_no_gap(backend_name):
    """A client that last saw the newest pruned message missed nothing: every later message is kept."""

    async def scenario(backend: Backend) -> None:
        stored = [(await store(backend, "lobby", "ann", f"m{n}")).message for n in range(8)]
        newest_pruned = stored[-RETAIN_FEW - 1]
        deadline = time.monotonic() + WAIT_SECONDS
        while len((await backend.history("lobby", 50)).messages) > RETAIN_FEW and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        replay = await backend.replay("lobby", newest_pruned.id, 50)
        assert replay.page.messages == stored[-RETAIN_FEW:]
        assert not replay.gap

    run_on(backend_name, RETAIN_FEW, scenario)


def test_client_ids_differing_only_in_trailing_spaces_are_two_client_ids(backend_name):
    """The wire module accepts any 1 to 64 characters as a client id, spaces included; "c1" and "c1 " are two.
    Storing one must not fail for the other, nor fail the other messages committed with it. (MariaDB's
    utf8mb4_bin, a PAD SPACE collation, took them for one in the unique index; fixed in schema version 3.)"""

    async def scenario(backend: Backend) -> None:
        first = await store(backend, "lobby", "ann", "one", "c1")
        together = [
            backend.store_soon(new_message("other", "bob", "bystander", None)),
            backend.store_soon(new_message("lobby", "eve", "two", "c1 ")),
        ]
        bystander, second = await asyncio.gather(*together)
        assert not second.duplicate and second.message.client_id == "c1 "
        assert not bystander.duplicate
        again = await store(backend, "lobby", "ann", "one", "c1")
        assert again.duplicate and again.message == first.message
        assert [m.client_id for m in (await backend.history("lobby", 10)).messages] == ["c1", "c1 "]

    run_on(backend_name, RETAIN_ALL, scenario)
