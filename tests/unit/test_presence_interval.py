"""How often a room's presence may go to all its sockets: twice a second, less in a room too big for that."""

from __future__ import annotations

import pytest

from rooms.room.presence import PRESENCE_INTERVAL, PRESENCE_WRITES_PER_SECOND, broadcast_interval


def test_a_room_within_its_writes_gets_presence_every_interval():
    assert broadcast_interval(0) == broadcast_interval(1) == PRESENCE_INTERVAL
    assert broadcast_interval(int(PRESENCE_WRITES_PER_SECOND * PRESENCE_INTERVAL)) == PRESENCE_INTERVAL


def test_a_bigger_room_waits_so_that_its_frames_stay_within_the_writes_a_second():
    for listeners in (2_001, 19_000, 100_000):
        assert listeners / broadcast_interval(listeners) == pytest.approx(PRESENCE_WRITES_PER_SECOND)
    assert broadcast_interval(19_000) == 4.75
