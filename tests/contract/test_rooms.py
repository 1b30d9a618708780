"""The backend contract (backends/base.py), rooms as a whole: the busiest rooms, expiry of idle rooms,
and the new-room quota of an address.

Run against every backend factory in tests/support/factories/ (the ``make_backend`` fixture).
"""

from __future__ import annotations

import pytest

from backends.base import AddressQuota, NewMessage, utc_timestamp
from backends.errors import QuotaExceeded
from tests.support.messages import fill, stamped


@pytest.mark.gen_test
async def test_busiest_rooms_orders_by_messages(make_backend):
    backend = await make_backend()
    await fill(backend, "quiet", 1)
    await fill(backend, "busy", 4)
    await fill(backend, "middle", 2)
    await backend.history("only-read", 10)  # reading a room stores nothing
    assert "only-read" not in [r.label for r in await backend.busiest_rooms(10)]
    busiest = await backend.busiest_rooms(2)
    assert [(r.label, r.message_count) for r in busiest] == [("busy", 4), ("middle", 2)]


@pytest.mark.gen_test(timeout=30)
async def test_expiry_removes_rooms_idle_since_the_cutoff_with_their_history(make_backend):
    backend = await make_backend()
    for room, days_ago in (("old", 9), ("older", 30), ("recent", 0.5)):
        for n in range(3):
            await backend.store(NewMessage(room, "ann", f"{room} {n}", f"c{n}", stamped(days_ago)))
    assert await backend.expire_rooms(stamped(7)) == 2
    for room in ("old", "older"):
        assert (await backend.history(room, 10)).messages == []
    assert [m.message for m in (await backend.history("recent", 10)).messages] == ["recent 0", "recent 1", "recent 2"]
    assert [r.label for r in await backend.busiest_rooms(10)] == ["recent"]
    assert await backend.expire_rooms(stamped(7)) == 0
    # A removed room is new again: a client id it held is stored as new, and its history starts over.
    again = await backend.store(NewMessage("old", "ann", "back", "c0", utc_timestamp()))
    assert not again.duplicate
    assert [m.message for m in (await backend.history("old", 10)).messages] == ["back"]


@pytest.mark.gen_test(timeout=30)
async def test_a_message_stored_since_keeps_its_room(make_backend):
    backend = await make_backend()
    await backend.store(NewMessage("lively", "ann", "long ago", None, stamped(10)))
    await backend.store(NewMessage("lively", "ann", "just now", None, utc_timestamp()))
    assert await backend.expire_rooms(stamped(7)) == 0
    assert len((await backend.history("lively", 10)).messages) == 2


@pytest.mark.gen_test(timeout=30)
async def test_a_first_message_past_the_new_room_quota_is_refused_and_stores_nothing(make_backend):
    backend = await make_backend(quota=AddressQuota(new_rooms_per_hour=2, messages_per_second=1000, burst=1000))
    for room in ("one", "two"):
        await backend.store(NewMessage(room, "ann", "first", None, utc_timestamp(), "203.0.113.1"))
    with pytest.raises(QuotaExceeded):
        await backend.store(NewMessage("three", "ann", "first", None, utc_timestamp(), "203.0.113.1"))
    assert (await backend.history("three", 10)).messages == []
    # Rooms with history, other addresses, and messages with no sender are not held back.
    await backend.store(NewMessage("one", "ann", "second", None, utc_timestamp(), "203.0.113.1"))
    await backend.store(NewMessage("three", "bob", "first", None, utc_timestamp(), "203.0.113.2"))
    await backend.store(NewMessage("four", "tool", "first", None, utc_timestamp()))
    assert sorted(r.label for r in await backend.busiest_rooms(10)) == ["four", "one", "three", "two"]
