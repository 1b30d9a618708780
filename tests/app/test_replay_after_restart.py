"""Sockets resuming with ``?since=`` from a process that has just started on an SQLite file: many at once
from the same id share the store's reads (``rooms.room.replay_reads``), and each still gets exactly what
it missed, once, in order, then everything live."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.ioloop
import tornado.web

from backends.base import StoredMessage
from backends.sql.backend import SQLBackend
from rooms.room.replay_reads import SharedReplayReads
from rooms.web.app import make_app
from tests.support.apps import app_config, backend_settings, shut_down
from tests.support.clients import connect, receive_json
from tests.support.factories.sql import SQLiteFactory, sql_backend
from tests.support.messages import post, store

ROOM = "lobby"
BEFORE_RESTART = 12
SOCKETS = 50


@pytest.fixture
def sqlite_url() -> Iterator[str]:
    factory = SQLiteFactory()
    yield factory.new_url()
    shutil.rmtree(factory.directory, ignore_errors=True)


@pytest.fixture
def before_restart(sqlite_url: str, io_loop: tornado.ioloop.IOLoop) -> list[StoredMessage]:
    """What the process before the restart stored, on the file the app then serves."""

    async def first_process() -> list[StoredMessage]:
        backend = sql_backend(sqlite_url)
        await backend.start()
        try:
            return [(await store(backend, ROOM, "ann", f"before {n}")).message for n in range(BEFORE_RESTART)]
        finally:
            await backend.close()

    return io_loop.run_sync(first_process)


@pytest.fixture
def restarted(sqlite_url: str, before_restart: list[StoredMessage], io_loop: tornado.ioloop.IOLoop) -> SQLBackend:
    """The store as the new process opens it; each of its replay reads counted in ``reads``."""
    backend = sql_backend(sqlite_url, **backend_settings(app_config()))
    replay = backend.replay
    backend.reads = 0  # type: ignore[attr-defined]

    async def counted(*args: Any) -> Any:
        backend.reads += 1  # type: ignore[attr-defined]
        return await replay(*args)

    backend.replay = counted  # type: ignore[method-assign]
    io_loop.run_sync(backend.start)
    return backend


@pytest.fixture
def app(restarted: SQLBackend, io_loop: tornado.ioloop.IOLoop) -> Iterator[tornado.web.Application]:
    application = make_app(app_config(limits={"connections_per_address": SOCKETS + 10}), restarted)
    yield application
    io_loop.run_sync(lambda: shut_down(application, restarted))


async def received_through_marker(ws: Any) -> list[dict[str, Any]]:
    """The frames a socket receives up to the marker (not included)."""
    frames = []
    while (frame := await receive_json(ws)).get("message") != "marker":
        frames.append(frame)
    return frames


def texts(frames: list[dict[str, Any]]) -> list[str]:
    return [frame["message"] if frame["type"] == "message" else frame["type"] for frame in frames]


@pytest.mark.gen_test(timeout=30)
async def test_sockets_resuming_together_from_the_same_id_each_get_exactly_what_they_missed(
    app, http_server, http_port, before_restart
):
    since = before_restart[4].id
    sockets = await asyncio.gather(*(connect(http_port, ROOM, since=since) for _ in range(SOCKETS)))
    await post(app.hub, ROOM, "bob", "live")
    await post(app.hub, ROOM, "bob", "marker")
    missed = [message.message for message in before_restart[5:]]
    for ws in sockets:
        assert texts(await received_through_marker(ws)) == [*missed, "live"]


@pytest.mark.gen_test(timeout=30)
async def test_sockets_resuming_from_different_ids_each_get_what_followed_theirs(
    app, http_server, http_port, before_restart
):
    resumed_from = [0, 3, 5, BEFORE_RESTART - 1] * 5
    sockets = await asyncio.gather(
        *(connect(http_port, ROOM, since=before_restart[n].id) for n in resumed_from),
        connect(http_port, ROOM, since="0"),
    )
    await post(app.hub, ROOM, "bob", "marker")
    for n, ws in zip(resumed_from, sockets, strict=False):
        assert texts(await received_through_marker(ws)) == [message.message for message in before_restart[n + 1 :]]
    assert texts(await received_through_marker(sockets[-1])) == [message.message for message in before_restart]


@pytest.mark.gen_test(timeout=30)
async def test_sockets_resuming_from_an_id_the_room_never_had_are_told_of_the_gap_and_get_the_whole_room(
    app, http_server, http_port, before_restart
):
    future = str(int(before_restart[-1].id) + 1000)
    sockets = await asyncio.gather(*(connect(http_port, ROOM, since=future) for _ in range(3)))
    await post(app.hub, ROOM, "bob", "marker")
    for ws in sockets:
        assert texts(await received_through_marker(ws)) == ["gap", *(message.message for message in before_restart)]


@pytest.mark.gen_test(timeout=30)
async def test_replays_asked_for_together_share_one_read(restarted, before_restart):
    reads = SharedReplayReads(restarted)
    since = before_restart[4].id
    answers = await asyncio.gather(*(reads.replay(ROOM, since, 20, None) for _ in range(SOCKETS)))
    assert restarted.reads == 1
    assert all(answer is answers[0] for answer in answers)
    assert [message.message for message in answers[0].page.messages] == [m.message for m in before_restart[5:]]


@pytest.mark.gen_test(timeout=30)
async def test_a_replay_asked_for_while_a_read_is_in_flight_gets_a_read_of_its_own_started_after_it(
    restarted, before_restart
):
    reads = SharedReplayReads(restarted)
    since = before_restart[-1].id
    first = asyncio.ensure_future(reads.replay(ROOM, since, 20, None))
    await asyncio.sleep(0)  # its read is on its way
    later = (await store(restarted, ROOM, "bob", "stored after the first read started")).message
    second = await reads.replay(ROOM, since, 20, None)
    assert [message.id for message in second.page.messages] == [later.id]
    assert [message.id for message in (await first).page.messages] in ([], [later.id])
    assert restarted.reads == 2


@pytest.mark.gen_test(timeout=30)
async def test_a_replay_given_up_while_waiting_for_a_shared_read_leaves_the_read_to_the_others(
    restarted, before_restart
):
    reads = SharedReplayReads(restarted)
    since = before_restart[4].id
    gone = asyncio.ensure_future(reads.replay(ROOM, since, 20, None))
    staying = asyncio.ensure_future(reads.replay(ROOM, since, 20, None))
    await asyncio.sleep(0)
    gone.cancel()
    answer = await staying
    assert gone.cancelled()
    assert [message.message for message in answer.page.messages] == [m.message for m in before_restart[5:]]
    assert restarted.reads == 1
