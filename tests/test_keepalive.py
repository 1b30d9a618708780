"""One timer pings every socket: each socket is visited once per interval, a few at a time."""

from __future__ import annotations

import pytest

from rooms.keepalive import SLOTS, Keepalive


class CountingSocket:
    def __init__(self) -> None:
        self.visits = 0

    def keepalive_visit(self) -> None:
        self.visits += 1


@pytest.mark.gen_test
async def test_every_socket_is_visited_once_per_interval_a_slot_at_a_time():
    keepalive = Keepalive(interval_seconds=60)
    sockets = [CountingSocket() for _ in range(3 * SLOTS)]
    for socket in sockets:
        keepalive.add(socket)
    keepalive.visit_next_slot()
    assert sum(socket.visits for socket in sockets) == 3
    for _ in range(SLOTS - 1):
        keepalive.visit_next_slot()
    assert [socket.visits for socket in sockets] == [1] * len(sockets)


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
