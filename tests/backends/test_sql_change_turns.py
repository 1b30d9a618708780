"""Changes to messages are made in the SQL writer's turns with the stores queued around them: each in its
place in the room's order and delivered there, answered as it would be alone (a refused one changes
nothing and the stores beside it are kept), and answered only once it is committed."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from backends.base import NewMessage, StoreResult, utc_timestamp
from backends.changes import ChangeKind
from backends.errors import MessageNotFound, NotAuthor
from backends.sql.backend import SQLBackend
from tests.support.factories.sql import sql_backend
from tests.support.recorder import Recorder
from tests.support.waiting import eventually

T = TypeVar("T")
ANN = "key:" + "a" * 64
EDITED = "2026-12-07T02:00:00.000001+00:00"


async def started(url: str) -> SQLBackend:
    backend = sql_backend(url)
    await backend.start()
    return backend


def store(backend: SQLBackend, text: str) -> asyncio.Future[StoreResult]:
    return backend.store_soon(NewMessage("lobby", "ann", text, None, utc_timestamp(), author=ANN))


async def asked(change: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A change asked for now, after the stores queued before it and before those queued after it."""
    task = asyncio.ensure_future(change)
    await asyncio.sleep(0)  # its first step hands the stores before it over, then asks for the change
    return task


@pytest.mark.gen_test(timeout=60)
async def test_changes_queued_among_stores_keep_their_place_and_their_answers_through_a_restart(sql_factory):
    url = sql_factory.new_url()
    backend = await started(url)
    recorder = Recorder()
    backend.set_delivery_target(recorder)
    await backend.subscribe("lobby")
    try:
        first = (await store(backend, "first")).message
        # Asked in this order without waiting for answers, so that the writer finds stores and changes
        # waiting together.
        work = [
            store(backend, "second"),
            await asked(backend.react("lobby", first.id, "sub:bob", "👍", True)),
            await asked(backend.edit_message("lobby", first.id, "not hers", EDITED, frozenset({"sub:x"}))),
            store(backend, "third"),
            await asked(backend.react("lobby", first.id, "sub:carol", "👍", False)),  # nothing to take back
            await asked(backend.react("lobby", str(int(first.id) + 1000), "sub:bob", "👍", True)),
            await asked(backend.edit_message("lobby", first.id, "first!", EDITED, frozenset({ANN}))),
            store(backend, "fourth"),
        ]
        for number in range(20):  # more of both, so that many turns hold both: 🎉 on, off, on, ...
            work.append(store(backend, f"more {number}"))
            work.append(await asked(backend.react("lobby", first.id, "sub:bob", "🎉", number % 2 == 0)))
        outcomes = await asyncio.gather(*work, return_exceptions=True)
        second, reaction, refused_edit, third, no_change, no_message, edit, fourth = outcomes[:8]
        assert isinstance(refused_edit, NotAuthor)
        assert no_change is None
        assert isinstance(no_message, MessageNotFound)
        assert all(outcome is not None and not isinstance(outcome, BaseException) for outcome in outcomes[8:])
        positions = [second.message.id, reaction.at, third.message.id, edit.at, fourth.message.id]
        assert [backend.id_key(p) for p in positions] == sorted({backend.id_key(p) for p in positions})
        await eventually(lambda: len(recorder.events) == 1 + len(positions) + 40)
        assert recorder.events[:6] == [
            ("deliver", "lobby", first.id),
            ("deliver", "lobby", second.message.id),
            ("reactions", "lobby", first.id),
            ("deliver", "lobby", third.message.id),
            ("edit", "lobby", first.id),
            ("deliver", "lobby", fourth.message.id),
        ]
        assert [change.at for change in recorder.changes] == sorted((change.at for change in recorder.changes), key=int)
        stood = (await backend.history("lobby", 50)).messages
    finally:
        await backend.close()

    reopened = await started(url)
    try:
        assert (await reopened.history("lobby", 50)).messages == stood
        assert stood[0].message == "first!" and stood[0].edited == EDITED
        assert stood[0].reactions == (("👍", 1),)
        changes = (await reopened.replay("lobby", first.id, 50, origin=first.id)).changes
        assert [change.kind for change in changes][:2] == [ChangeKind.REACTIONS, ChangeKind.EDIT]
    finally:
        await reopened.close()
