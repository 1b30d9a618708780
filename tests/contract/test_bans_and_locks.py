"""The backend contract (backends/base.py), moderation by bans and room locks.

Run against every backend factory in tests/support/factories/ (the ``make_backend`` fixture).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from backends.base import AddressQuota, Backend, Ban, NewMessage, utc_timestamp
from backends.errors import QuotaExceeded
from tests.support.messages import fill, store
from tests.support.recorder import subscribed_backend
from tests.support.waiting import eventually


def parsed(timestamp: str) -> datetime:
    moment = datetime.fromisoformat(timestamp)
    assert moment.utcoffset() == timedelta(0)
    return moment


@pytest.mark.gen_test(timeout=30)
async def test_bans_by_handle_or_address_in_a_room_or_everywhere_are_listed_oldest_first(make_backend):
    backend = await make_backend()
    before = datetime.now(UTC) - timedelta(seconds=5)  # a store's clock (Redis's) may differ a little
    made = [
        await backend.add_ban("spammer", None, None, None, ""),
        await backend.add_ban(None, "203.0.113.7", "lobby", 3600, "flooding"),
        await backend.add_ban("Zoë 🚀", None, "other", 60.5, "répété"),
        await backend.add_ban(None, "2001:db8::1", None, None, "abuse"),
    ]
    assert [(b.handle, b.address, b.room, b.reason) for b in made] == [
        ("spammer", None, None, ""),
        (None, "203.0.113.7", "lobby", "flooding"),
        ("Zoë 🚀", None, "other", "répété"),
        (None, "2001:db8::1", None, "abuse"),
    ]
    assert len({ban.id for ban in made}) == 4 and all(isinstance(ban.id, str) and ban.id for ban in made)
    for ban in made:
        assert before <= parsed(ban.created) <= datetime.now(UTC) + timedelta(seconds=5)
    assert made[0].expires is None and made[3].expires is None
    assert parsed(made[1].expires) - parsed(made[1].created) == timedelta(seconds=3600)
    assert parsed(made[2].expires) - parsed(made[2].created) == timedelta(seconds=60.5)
    assert await backend.bans() == made


@pytest.mark.gen_test
async def test_a_ban_names_exactly_one_of_a_handle_and_an_address_for_positive_seconds(make_backend):
    backend = await make_backend()
    for handle, address, seconds in (
        (None, None, None),
        ("ann", "203.0.113.7", None),
        ("", None, None),
        ("ann", None, 0),
        ("ann", None, -1),
        ("ann", None, float("nan")),
    ):
        with pytest.raises(ValueError):
            await backend.add_ban(handle, address, None, seconds, "")
    assert await backend.bans() == []


@pytest.mark.gen_test(timeout=30)
async def test_an_expired_ban_is_not_in_force_and_cannot_be_lifted(make_backend):
    backend = await make_backend()
    short = await backend.add_ban("ann", None, None, 0.5, "cool down")
    lasting = await backend.add_ban("bob", None, None, None, "")
    assert await backend.bans() == [short, lasting]
    await eventually(lambda: _bans_are(backend, [lasting]), timeout=5, interval=0.1)
    assert not await backend.lift_ban(short.id)
    assert await backend.bans() == [lasting]


async def _bans_are(backend: Backend, expected: list[Ban]) -> bool:
    return await backend.bans() == expected


@pytest.mark.gen_test(timeout=30)
async def test_a_lifted_ban_is_gone_and_lifting_an_unknown_one_is_false(make_backend):
    backend = await make_backend()
    first = await backend.add_ban("ann", None, "lobby", None, "")
    second = await backend.add_ban(None, "198.51.100.2", None, 30, "")
    assert await backend.lift_ban(first.id)
    assert await backend.bans() == [second]
    assert not await backend.lift_ban(first.id)
    for unknown in ("", "abc", "999999999", "-1", "1.5"):
        assert not await backend.lift_ban(unknown)
    assert await backend.bans() == [second]
    third = await backend.add_ban("ann", None, None, None, "again")
    assert third.id not in (first.id, second.id)  # ids are not issued twice
    assert await backend.bans() == [second, third]


@pytest.mark.gen_test(timeout=30)
async def test_rooms_are_locked_and_unlocked_idempotently(make_backend):
    backend = await make_backend()
    assert await backend.locked_rooms() == frozenset()
    await backend.set_locked("lobby", True)
    await backend.set_locked("Lobby", True)  # labels are case-sensitive
    await backend.set_locked("lobby", True)
    assert await backend.locked_rooms() == {"lobby", "Lobby"}
    await backend.set_locked("lobby", False)
    await backend.set_locked("lobby", False)
    await backend.set_locked("never-locked", False)
    assert await backend.locked_rooms() == {"Lobby"}


@pytest.mark.gen_test(timeout=30)
async def test_locking_a_room_stores_the_lock_and_not_the_room(make_backend):
    backend = await make_backend(quota=AddressQuota(new_rooms_per_hour=1, messages_per_second=1000, burst=1000))
    await backend.set_locked("locked", True)
    assert await backend.busiest_rooms(10) == []
    assert (await backend.history("locked", 10)).messages == []
    # The address's one new room goes elsewhere: the locked room is still new, so its first message is
    # a new room past the quota.
    await backend.store(NewMessage("first", "ann", "hi", None, utc_timestamp(), "203.0.113.1"))
    with pytest.raises(QuotaExceeded):
        await backend.store(NewMessage("locked", "ann", "hi", None, utc_timestamp(), "203.0.113.1"))


@pytest.mark.gen_test(timeout=30)
async def test_every_moderation_change_is_told_and_nothing_else(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    ban = await backend.add_ban("ann", None, None, None, "")
    await eventually(lambda: recorder.moderation_changes == 1)
    assert await backend.lift_ban(ban.id)
    await eventually(lambda: recorder.moderation_changes == 2)
    await backend.set_locked("lobby", True)
    await eventually(lambda: recorder.moderation_changes == 3)
    # What changes nothing tells nobody, and a deletion is told as a deletion.
    assert not await backend.lift_ban(ban.id)
    await backend.set_locked("lobby", True)
    await backend.set_locked("other", False)
    await backend.bans()
    await backend.locked_rooms()
    [message] = await fill(backend, "lobby", 1)
    assert await backend.delete_message("lobby", message.id)
    # A notice names no change, so no later notice could show that one too many came before it: the marker is
    # a message stored after them all. A process is told of moderation and of its rooms' messages in the order
    # they were made (a notice queued on this loop goes on its next turn, hence the turn after the delivery),
    # except on a Redis Cluster, where the two travel apart; there the scripts' notices are counted on the
    # moderation channel itself (tests/backends/test_redis_moderation.py).
    marker = (await store(backend, "lobby", "ann", "marker", None)).message
    await recorder.wait_for(2)
    await asyncio.sleep(0)
    assert recorder.delivered == [message, marker]
    assert recorder.deletions == [("lobby", message.id)]
    assert recorder.moderation_changes == 3
