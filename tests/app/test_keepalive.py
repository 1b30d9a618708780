"""Pings: one timer visits every socket once per interval, a few at a time, a new one first an interval after
it came, and lets go of its tables' storage when the last has left; over a real socket, a client is first
pinged an interval after it connected and stays while it answers, and a peer that never answers is dropped."""

from __future__ import annotations

import time
import tracemalloc
from asyncio import Future
from collections.abc import Callable

import pytest
from tornado.ioloop import IOLoop

import rooms.web.keepalive
from rooms.web.keepalive import SLOTS, VISIT_BATCH, Keepalive
from tests.support.apps import app_config
from tests.support.clients import CLOSE, PING, connect, raw_handshake, read_until_closed, receive_json
from tests.support.messages import post
from tests.support.waiting import eventually


@pytest.fixture
def config():
    return app_config(server={"ping_interval": 0.2})


class CountingSocket:
    def __init__(self) -> None:
        self.visits = 0

    def keepalive_visit(self) -> None:
        self.visits += 1


@pytest.mark.gen_test
async def test_every_socket_is_visited_once_per_interval_a_slot_at_a_time():
    keepalive = Keepalive(interval_seconds=60)
    # Three sockets open within each tick of an interval: each tick then visits three.
    sockets = []
    for _ in range(SLOTS):
        for _ in range(3):
            sockets.append(CountingSocket())
            keepalive.add(sockets[-1])
        keepalive.visit_next_slot()
    assert sum(socket.visits for socket in sockets) == 3
    for _ in range(SLOTS - 1):
        keepalive.visit_next_slot()
    assert [socket.visits for socket in sockets] == [1] * len(sockets)


@pytest.mark.gen_test
async def test_a_new_socket_is_first_visited_an_interval_after_it_came_not_at_the_next_tick():
    keepalive = Keepalive(interval_seconds=60)
    keepalive.add(CountingSocket())  # the timer runs
    for ticks_before in (0, 1, SLOTS // 2, SLOTS - 1):
        for _ in range(ticks_before):
            keepalive.visit_next_slot()
        socket = CountingSocket()
        keepalive.add(socket)
        for _ in range(SLOTS - 1):
            keepalive.visit_next_slot()
        assert socket.visits == 0, ticks_before
        keepalive.visit_next_slot()  # a whole interval of ticks since it came
        assert socket.visits == 1, ticks_before
        keepalive.discard(socket)


@pytest.mark.gen_test
async def test_a_socket_that_left_is_not_visited_and_the_timer_stops_with_the_last():
    keepalive = Keepalive(interval_seconds=60)
    staying, leaving = CountingSocket(), CountingSocket()
    keepalive.add(staying)
    keepalive.add(leaving)
    assert keepalive.running
    keepalive.discard(leaving)
    for _ in range(SLOTS):
        keepalive.visit_next_slot()
    assert (staying.visits, leaving.visits) == (1, 0)
    keepalive.discard(staying)
    assert not keepalive.running


async def after_the_loops_next_two_turns(measure: Callable[[], int]) -> tuple[int, int]:
    """``measure`` after what is already in the loop's queue has run, then after what that queued has run."""
    loop = IOLoop.current()
    first, second = Future[int](), Future[int]()

    def first_marker() -> None:
        first.set_result(measure())
        loop.add_callback(lambda: second.set_result(measure()))

    loop.add_callback(first_marker)
    return await first, await second


@pytest.mark.gen_test
async def test_a_slot_a_crowd_filled_is_visited_a_batch_per_turn_of_the_loop():
    keepalive = Keepalive(interval_seconds=60)
    sockets = [CountingSocket() for _ in range(2 * VISIT_BATCH + 1)]
    for socket in sockets:  # all opened within one tick: one slot
        keepalive.add(socket)

    def visits() -> int:
        return sum(socket.visits for socket in sockets)

    for _ in range(SLOTS):
        keepalive.visit_next_slot()
    assert visits() == VISIT_BATCH
    # The second batch is queued before the first marker; the third by the second, before the second marker.
    assert await after_the_loops_next_two_turns(visits) == (2 * VISIT_BATCH, 2 * VISIT_BATCH + 1)

    # An interval later: those not visited yet when they close are not visited at all.
    for _ in range(SLOTS):
        keepalive.visit_next_slot()
    assert visits() == len(sockets) + VISIT_BATCH
    for socket in sockets:
        if socket.visits == 1:
            keepalive.discard(socket)
    assert await after_the_loops_next_two_turns(visits) == (len(sockets) + VISIT_BATCH,) * 2


def kept_by_keepalive() -> int:
    """What the keepalive's module allocated and still holds: its tables of sockets."""
    keepalive_file = tracemalloc.Filter(True, rooms.web.keepalive.__file__)
    return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces([keepalive_file]).statistics("filename"))


@pytest.mark.gen_test
async def test_the_tables_a_crowd_filled_are_let_go_when_its_last_socket_has_left():
    tracemalloc.start()
    try:
        keepalive = Keepalive(interval_seconds=60)
        empty = kept_by_keepalive()
        sockets = [CountingSocket() for _ in range(5000)]
        for socket in sockets:
            keepalive.add(socket)
        assert kept_by_keepalive() - empty > 50 * len(sockets)
        for socket in sockets[1:]:
            keepalive.discard(socket)
        assert kept_by_keepalive() - empty > 50 * len(sockets)  # sets and dicts keep what they held
        before_the_last_left = tracemalloc.take_snapshot()
        keepalive.discard(sockets[0])
        assert kept_by_keepalive() - empty < 4096
        # Nothing new is made as the last leaves: a block made then would land among the crowd's and keep
        # their arenas from being given back.
        made = tracemalloc.take_snapshot().compare_to(before_the_last_left, "traceback")
        keepalive_file = rooms.web.keepalive.__file__
        assert [diff for diff in made if diff.count_diff > 0 and diff.traceback[0].filename == keepalive_file] == []
        keepalive.add(sockets[0])  # and it serves the next as before
        for _ in range(SLOTS):
            keepalive.visit_next_slot()
        assert sockets[0].visits == 1
        keepalive.discard(sockets[0])
    finally:
        tracemalloc.stop()


@pytest.mark.gen_test(timeout=10)
async def test_a_client_is_pinged_answers_and_stays(http_server, http_port, app):
    ws = await connect(http_port, "lobby")
    pings: list[bytes] = []
    ws.on_ping = pings.append  # Tornado's client calls it for each ping, after answering it with a pong
    # The server pings again only once the last ping was answered: a third ping means two pongs were heard.
    await eventually(lambda: len(pings) >= 3, timeout=5, message=lambda: f"{len(pings)} pings reached the client")
    await post(app.hub, "lobby", "ann", "still connected")
    assert (await receive_json(ws))["message"] == "still connected"


@pytest.mark.gen_test(timeout=10)
async def test_a_client_is_first_pinged_about_an_interval_after_it_connected(http_server, http_port, config):
    connecting = time.monotonic()
    ws = await connect(http_port, "lobby")
    pinged: list[float] = []
    ws.on_ping = lambda _: pinged.append(time.monotonic())
    await eventually(lambda: pinged, timeout=5, message="no ping reached the client")
    # Its slot was visited at most a tick before it opened, and a load can only make the ping later.
    interval = config.server.ping_interval
    assert pinged[0] - connecting >= interval * (1 - 1 / SLOTS)


@pytest.mark.gen_test(timeout=20)
async def test_a_peer_that_never_answers_pings_is_dropped(http_server, http_port, app):
    silent = await raw_handshake(http_port, "/chat/lobby/")
    try:
        await eventually(lambda: app.hub.online("lobby") == 1)
        # The unanswered ping starts the close handshake, which Tornado gives up on after 5 seconds.
        frames = await read_until_closed(silent, timeout=15)
        assert [opcode for opcode, _ in frames] == [PING, CLOSE], frames
        assert frames[-1][1][2:] == b"ping timed out"
        await eventually(lambda: app.hub.online("lobby") == 0)
    finally:
        silent.close()
