"""The contract every backend keeps (backends/base.py), run against every factory in tests/support/factories/.

A backend adds a factory there; it never copies a test from here.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from backends.base import (
    AddressQuota,
    Backend,
    Ban,
    NewMessage,
    Replay,
    RoomPresence,
    StoredMessage,
    utc_timestamp,
)
from backends.errors import InvalidMessageId, MessageDeleted, QuotaExceeded
from tests.support.messages import new_message, store, store_soon
from tests.support.recorder import Recorder
from tests.support.waiting import eventually


async def subscribed_backend(make_backend, room: str, **options) -> tuple[Backend, Recorder]:
    backend = await make_backend(**options)
    recorder = Recorder()
    backend.set_delivery_target(recorder)
    await backend.subscribe(room)
    return backend, recorder


async def fill(backend: Backend, room: str, count: int, handle: str = "ann") -> list[StoredMessage]:
    return [(await store(backend, room, handle, f"message {n}", None)).message for n in range(count)]


@pytest.mark.gen_test
async def test_store_returns_message_with_id_timestamp_and_fields(make_backend):
    backend = await make_backend()
    result = await store(backend, "lobby", "ann", "hello", None)
    message = result.message
    assert not result.duplicate
    assert (message.room, message.handle, message.message, message.client_id) == ("lobby", "ann", "hello", None)
    assert isinstance(message.id, str) and message.id
    assert message.timestamp.endswith("+00:00")


@pytest.mark.gen_test
async def test_ids_increase_in_store_order(make_backend):
    backend = await make_backend()
    stored = await fill(backend, "lobby", 5)
    keys = [backend.id_key(m.id) for m in stored]
    assert keys == sorted(keys) and len(set(keys)) == 5
    assert all(backend.id_key("0") < key for key in keys)


@pytest.mark.gen_test(timeout=20)
async def test_stores_started_together_are_stored_delivered_and_answered_in_start_order(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    answered: list[int] = []
    stores = []
    for n in range(120):
        store = store_soon(backend, "lobby", "ann", f"m{n}", f"c{n % 100}")  # the last 20 are resends
        store.add_done_callback(lambda _, n=n: answered.append(n))
        stores.append(store)
    results = await asyncio.gather(*stores)
    assert answered == list(range(120))
    assert [r.duplicate for r in results] == [False] * 100 + [True] * 20
    assert [r.message.id for r in results[100:]] == [r.message.id for r in results[:20]]
    keys = [backend.id_key(r.message.id) for r in results[:100]]
    assert keys == sorted(keys) and len(set(keys)) == 100
    delivered = await recorder.wait_for(100)
    assert [m.message for m in delivered] == [f"m{n}" for n in range(100)]
    assert [m.message for m in (await backend.history("lobby", 200)).messages] == [f"m{n}" for n in range(100)]


@pytest.mark.gen_test(timeout=30)
async def test_subscribe_returns_where_delivery_starts_while_stores_go_on(make_backend):
    # The hub holds a joining socket on it: every message after the returned id is still to be delivered,
    # and none at or before it is delivered once subscribe has returned.
    backend = await make_backend()
    recorder = Recorder()
    backend.set_delivery_target(recorder)
    await fill(backend, "lobby", 5)
    stores = [store_soon(backend, "lobby", "ann", f"m{n}", None) for n in range(200)]
    await asyncio.sleep(0)
    start = backend.id_key(await backend.subscribe("lobby"))
    delivered_before_return = len(recorder.delivered)
    results = await asyncio.gather(*stores)
    after_start = [r.message.id for r in results if backend.id_key(r.message.id) > start]
    await recorder.wait_for(delivered_before_return + len(after_start))
    assert [m.id for m in recorder.delivered[delivered_before_return:]] == after_start


@pytest.mark.gen_test
async def test_history_newest_n_oldest_first_with_has_more(make_backend):
    backend = await make_backend()
    stored = await fill(backend, "lobby", 7)
    page = await backend.history("lobby", 3)
    assert [m.id for m in page.messages] == [m.id for m in stored[4:]]
    assert page.has_more
    everything = await backend.history("lobby", 7)
    assert [m.message for m in everything.messages] == [m.message for m in stored]
    assert not everything.has_more


@pytest.mark.gen_test
async def test_history_before_and_after_page_through_a_room(make_backend):
    backend = await make_backend()
    stored = await fill(backend, "lobby", 7)
    older = await backend.history("lobby", 3, before=stored[4].id)
    assert [m.id for m in older.messages] == [m.id for m in stored[1:4]]
    assert older.has_more
    oldest = await backend.history("lobby", 3, before=stored[1].id)
    assert [m.id for m in oldest.messages] == [stored[0].id] and not oldest.has_more
    newer = await backend.history("lobby", 3, after=stored[1].id)
    assert [m.id for m in newer.messages] == [m.id for m in stored[2:5]]
    assert newer.has_more
    newest = await backend.history("lobby", 3, after=stored[4].id)
    assert [m.id for m in newest.messages] == [m.id for m in stored[5:]] and not newest.has_more
    from_start = await backend.history("lobby", 2, after="0")
    assert [m.id for m in from_start.messages] == [m.id for m in stored[:2]]


@pytest.mark.gen_test
async def test_rooms_are_isolated(make_backend):
    backend = await make_backend()
    await fill(backend, "one", 2)
    await fill(backend, "two", 3)
    assert len((await backend.history("one", 50)).messages) == 2
    assert {m.room for m in (await backend.history("two", 50)).messages} == {"two"}
    assert (await backend.history("empty", 50)).messages == []


@pytest.mark.gen_test
async def test_labels_are_case_sensitive(make_backend):
    backend = await make_backend()
    await store(backend, "Lobby", "ann", "upper", None)
    await store(backend, "lobby", "ann", "lower", None)
    assert [m.message for m in (await backend.history("Lobby", 10)).messages] == ["upper"]
    assert [m.message for m in (await backend.history("lobby", 10)).messages] == ["lower"]


@pytest.mark.gen_test
async def test_stored_message_is_delivered_to_a_subscriber_after_store(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    stored = (await store(backend, "lobby", "ann", "hi", "c-1")).message
    delivered = await recorder.wait_for(1)
    assert delivered == [stored]
    assert stored.client_id == "c-1"


@pytest.mark.gen_test
async def test_delivery_order_is_history_order_under_concurrent_stores(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    results = await asyncio.gather(*(store(backend, "lobby", f"user{n % 5}", f"m{n}", None) for n in range(40)))
    delivered = await recorder.wait_for(40)
    history = (await backend.history("lobby", 100)).messages
    assert [m.id for m in delivered] == [m.id for m in history]
    assert sorted(m.id for m in delivered) == sorted(r.message.id for r in results)
    keys = [backend.id_key(m.id) for m in delivered]
    assert keys == sorted(keys)


@pytest.mark.gen_test
async def test_unsubscribed_rooms_are_not_delivered_and_unsubscribe_is_idempotent(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    await backend.unsubscribe("lobby")
    await backend.unsubscribe("lobby")
    await backend.unsubscribe("never-subscribed")
    await store(backend, "other", "ann", "elsewhere", None)
    await store(backend, "lobby", "ann", "after unsubscribe", None)
    await backend.subscribe("lobby")
    await backend.subscribe("lobby")
    again = (await store(backend, "lobby", "ann", "subscribed again", None)).message
    # Deliveries follow the order of stores: a marker stored last comes after anything still due.
    marker = (await store(backend, "lobby", "ann", "marker", None)).message
    delivered = await recorder.wait_for(2)
    assert recorder.delivered == [again, marker]
    assert delivered[0].message == "subscribed again"


@pytest.mark.gen_test
async def test_resent_client_id_is_stored_once_per_room(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    first = await store(backend, "lobby", "ann", "once", "abc")
    again = await store(backend, "lobby", "ann", "once", "abc")
    assert not first.duplicate and again.duplicate
    assert again.message == first.message
    other_room = await store(backend, "other", "ann", "once", "abc")
    assert not other_room.duplicate
    marker = (await store(backend, "lobby", "ann", "marker", None)).message  # delivered after any resend
    await recorder.wait_for(2)
    assert [m.id for m in recorder.delivered] == [first.message.id, marker.id]
    assert [m.id for m in (await backend.history("lobby", 10)).messages] == [first.message.id, marker.id]


# Who sent each message, as the room layer sets it (``Identity.author``): a handle picked freely, a token's
# user (a ``sub`` with characters every store must keep exactly), a moderator's token with a user, and a
# moderator token from the config, which names no user.
SENDERS = [(None, False), ("user-7 ü 👋", False), ("mod-1", True), (None, True)]


def senders_of(messages: list[StoredMessage]) -> list[tuple[str | None, bool]]:
    # ``type(...) is bool``: a store that read back 1 for True would compare equal, and encode as 1.
    assert all(type(m.moderator) is bool for m in messages)
    return [(m.user, m.moderator) for m in messages]


@pytest.mark.gen_test
async def test_user_and_moderator_come_back_exactly_from_store_history_replay_and_delivery(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    stored = [
        (await store(backend, "lobby", "ann", f"m{n}", f"c{n}", user, moderator)).message
        for n, (user, moderator) in enumerate(SENDERS)
    ]
    assert senders_of(stored) == SENDERS
    assert senders_of(await recorder.wait_for(4)) == SENDERS and recorder.delivered == stored
    assert (await backend.history("lobby", 10)).messages == stored
    assert senders_of((await backend.history("lobby", 10)).messages) == SENDERS
    assert (await backend.history("lobby", 2, before=stored[2].id)).messages == stored[:2]
    assert (await backend.history("lobby", 10, after=stored[0].id)).messages == stored[1:]
    replay = await backend.replay("lobby", stored[0].id, 10)
    assert replay.page.messages == stored[1:] and senders_of(replay.page.messages) == SENDERS[1:]
    assert (await backend.replay("lobby", "0", 10)).page.messages == stored


@pytest.mark.gen_test
async def test_a_resend_is_answered_with_who_sent_the_stored_message_whoever_the_resend_says(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    stored = [
        (await store(backend, "lobby", "ann", f"m{n}", f"c{n}", user, moderator)).message
        for n, (user, moderator) in enumerate(SENDERS)
    ]
    for n, (user, moderator) in enumerate(SENDERS):
        again = await store(backend, "lobby", "ann", f"m{n}", f"c{n}", None if user else "someone", not moderator)
        assert again.duplicate and again.message == stored[n]
        assert senders_of([again.message]) == [SENDERS[n]]
    # Resent while the first is still on its way: both answered with the first as it was sent.
    first, resent = await asyncio.gather(
        backend.store_soon(new_message("lobby", "bob", "twice", "c-twice", "user-8", True)),
        backend.store_soon(new_message("lobby", "bob", "twice", "c-twice")),
    )
    assert resent.duplicate and resent.message == first.message
    assert senders_of([first.message, resent.message]) == [("user-8", True)] * 2
    await recorder.wait_for(5)
    assert recorder.delivered == [*stored, first.message]


@pytest.mark.gen_test
async def test_a_message_without_user_or_moderator_has_neither(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    plain = NewMessage("lobby", "ann", "hi", None, utc_timestamp())  # as the wire module makes every message
    stored = (await backend.store(plain)).message
    read = (await backend.history("lobby", 1)).messages
    for message in (stored, *read, *await recorder.wait_for(1)):
        assert message.user is None and message.moderator is False


@pytest.mark.gen_test
async def test_retention_prunes_oldest_messages(make_backend):
    backend = await make_backend(retain_per_room=10)
    stored = await fill(backend, "lobby", 60)

    async def pruned() -> list[StoredMessage] | None:
        kept = (await backend.history("lobby", 200)).messages
        return kept if len(kept) <= 20 else None

    # Pruning may lag a little and may keep a few extra, never fewer than asked.
    kept = await eventually(pruned, timeout=5, interval=0.1, message="at most 20 kept")
    assert len(kept) >= 10
    assert [m.id for m in kept] == [m.id for m in stored[-len(kept) :]]


@pytest.mark.gen_test
async def test_retain_zero_keeps_everything(make_backend):
    backend = await make_backend(retain_per_room=0)
    await fill(backend, "lobby", 30)
    assert len((await backend.history("lobby", 200)).messages) == 30


@pytest.mark.gen_test
async def test_replay_without_gap_is_what_followed_since(make_backend):
    backend = await make_backend()
    stored = await fill(backend, "lobby", 5)
    replay = await backend.replay("lobby", stored[2].id, 10)
    assert (replay.gap, replay.after, replay.page.has_more) == (False, stored[2].id, False)
    assert replay.page.messages == stored[3:]
    first = await backend.replay("lobby", stored[0].id, 2)
    assert (first.page.messages, first.page.has_more) == (stored[1:3], True)
    whole = await backend.replay("lobby", "0", 10)
    assert (whole.gap, whole.page.messages) == (False, stored)
    assert (await backend.replay("lobby", stored[-1].id, 10)).page.messages == []


@pytest.mark.gen_test
async def test_replay_reports_gap_when_history_was_pruned(make_backend):
    backend = await make_backend(retain_per_room=5)
    stored = await fill(backend, "lobby", 40)

    async def gap() -> Replay | None:
        replay = await backend.replay("lobby", stored[0].id, 200)
        return replay if replay.gap else None

    replay = await eventually(gap, timeout=5, interval=0.1, message="a replay from the first message is a gap")
    assert replay.page.messages[-1] == stored[-1]
    assert not (await backend.replay("lobby", stored[-1].id, 200)).gap


@pytest.mark.gen_test
async def test_malformed_ids_are_refused(make_backend):
    backend = await make_backend()
    for bad in ["", "abc", "-1", "1.5", "1 ", "１２", "x" * 100]:
        with pytest.raises(InvalidMessageId):
            backend.id_key(bad)


@pytest.mark.gen_test
async def test_unicode_round_trips_exactly(make_backend):
    backend = await make_backend()
    text = "héllo 👋🏽 世界 \U0001f9d1\u200d\U0001f680 ‮rtl‬ tab\tnewline\n"
    stored = (await store(backend, "lobby", "Zoë 🚀", text, "ü-1")).message
    read = (await backend.history("lobby", 1)).messages[0]
    assert (read.handle, read.message, read.client_id) == ("Zoë 🚀", text, "ü-1")
    assert read.message.encode() == text.encode()
    assert read == stored


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


@pytest.mark.gen_test
async def test_health_passes_on_a_started_backend(make_backend, backend_name):
    backend = await make_backend()
    await backend.health()
    assert backend.kind == backend_name  # each factory is named after the kind it makes


def stamped(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()


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


@pytest.mark.gen_test
async def test_presence_of_one_process_is_its_share_and_goes_when_it_has_none(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    share = RoomPresence(3, ("ann", "bob"))
    assert await backend.presence("lobby", share, changed=True) == share
    assert await backend.presence("lobby", share, changed=False) == share
    assert await backend.presence("lobby", RoomPresence(0, ()), changed=True) == RoomPresence(0, ())
    assert await backend.presence("other", RoomPresence(1, ()), changed=True) == RoomPresence(1, ())
    backend.relay("lobby", '{"type":"typing","handle":"ann"}')
    # A message stored after them is the marker: a backend of several processes sends signals and presence
    # notices on the room's own channel, ahead of the messages stored after them.
    [marker] = await fill(backend, "lobby", 1)
    await eventually(lambda: recorder.delivered)
    # A process hears neither its own signals nor its own presence notices: it delivers those itself.
    assert recorder.signals == [] and recorder.presence_changes == []
    assert recorder.delivered == [marker]


# -- moderation: deleting messages ---------------------------------------------------------------------


@pytest.mark.gen_test(timeout=30)
async def test_a_deleted_message_is_gone_from_history_and_replay_and_its_deletion_is_delivered_after_it(
    make_backend,
):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    stored = await fill(backend, "lobby", 5)
    gone = stored[2]
    assert await backend.delete_message("lobby", gone.id)
    kept = [stored[0], stored[1], stored[3], stored[4]]
    assert (await backend.history("lobby", 10)).messages == kept
    assert (await backend.history("lobby", 2, before=stored[3].id)).messages == stored[:2]
    assert (await backend.history("lobby", 1, after=stored[1].id)).messages == [stored[3]]
    for since, expected in (("0", kept), (stored[1].id, stored[3:]), (gone.id, stored[3:])):
        replay = await backend.replay("lobby", since, 10)
        assert (replay.gap, replay.after, replay.page.messages) == (False, since, expected)
    await eventually(lambda: recorder.deletions == [("lobby", gone.id)])
    assert recorder.events.index(("deliver", "lobby", gone.id)) < recorder.events.index(("deleted", "lobby", gone.id))


@pytest.mark.gen_test(timeout=30)
async def test_deleting_what_is_not_there_is_false_and_an_invalid_id_is_refused(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    [message] = await fill(backend, "lobby", 1)
    [elsewhere] = await fill(backend, "other", 1)
    assert not await backend.delete_message("never-written", message.id)  # ids are per room
    assert not await backend.delete_message("lobby", "0")
    assert await backend.delete_message("lobby", message.id)
    assert not await backend.delete_message("lobby", message.id)  # once only
    for bad in ("", "abc", "-1", "1 ", "x" * 100):
        with pytest.raises(InvalidMessageId):
            await backend.delete_message("lobby", bad)
    assert (await backend.history("other", 10)).messages == [elsewhere]
    await eventually(lambda: recorder.deletions)
    marker = (await store(backend, "lobby", "ann", "marker", None)).message  # told after any deletion due
    await recorder.wait_for(2)
    assert recorder.deletions == [("lobby", message.id)]
    assert recorder.events[-1] == ("deliver", "lobby", marker.id)


@pytest.mark.gen_test(timeout=30)
async def test_deleting_the_newest_message_keeps_ids_increasing_and_replays_whole(make_backend):
    backend = await make_backend()
    recorder = Recorder()
    backend.set_delivery_target(recorder)
    stored = await fill(backend, "lobby", 3)
    newest = stored[-1]
    assert await backend.delete_message("lobby", newest.id)
    # A room first subscribed now starts delivery at or after the deleted id, not before it: nothing to
    # wait for up to there.
    start = await backend.subscribe("lobby")
    assert backend.id_key(start) >= backend.id_key(newest.id)
    later = (await store(backend, "lobby", "ann", "after the deletion", None)).message
    assert backend.id_key(later.id) > backend.id_key(newest.id)
    await recorder.wait_for(1)
    assert recorder.delivered == [later]
    for since in (newest.id, stored[1].id):
        replay = await backend.replay("lobby", since, 10)
        assert (replay.gap, replay.after, replay.page.messages) == (False, since, [later])
    assert (await backend.history("lobby", 10)).messages == [*stored[:2], later]
    assert (await backend.history("lobby", 10, after=newest.id)).messages == [later]


@pytest.mark.gen_test(timeout=30)
async def test_deletions_are_not_taken_for_pruning(make_backend):
    # Five kept: deleting two leaves room for two more before anything is pruned, and no replay is a gap.
    backend = await make_backend(retain_per_room=5)
    stored = await fill(backend, "lobby", 5)
    for message in stored[:2]:
        assert await backend.delete_message("lobby", message.id)
    stored += await fill(backend, "lobby", 2)
    kept = stored[2:]
    for since in ("0", stored[0].id, stored[1].id, stored[2].id):
        replay = await backend.replay("lobby", since, 10)
        assert not replay.gap, since
        assert replay.page.messages == [m for m in kept if backend.id_key(m.id) > backend.id_key(since)]
    assert (await backend.history("lobby", 10)).messages == kept


@pytest.mark.gen_test(timeout=30)
async def test_a_resent_client_id_of_a_deleted_message_is_refused_and_not_stored_again(make_backend):
    backend, recorder = await subscribed_backend(make_backend, "lobby")
    first = (await store(backend, "lobby", "ann", "spam", "c-1")).message
    assert await backend.delete_message("lobby", first.id)
    with pytest.raises(MessageDeleted):
        await store(backend, "lobby", "ann", "spam", "c-1")
    # Refused in a batch too, beside stores that go through; the client id stays free in other rooms.
    resend, fresh = store_soon(backend, "lobby", "ann", "spam", "c-1"), store_soon(backend, "lobby", "ann", "ok", "c-2")
    with pytest.raises(MessageDeleted):
        await resend
    fresh_message = (await fresh).message
    elsewhere = await store(backend, "other", "ann", "spam", "c-1")
    assert not elsewhere.duplicate
    assert (await backend.history("lobby", 10)).messages == [fresh_message]
    await recorder.wait_for(2)
    assert [m.id for m in recorder.delivered] == [first.id, fresh_message.id]


@pytest.mark.gen_test(timeout=30)
async def test_deleted_messages_leave_the_room_counts_but_not_its_last_activity(make_backend):
    backend = await make_backend()
    await backend.store(NewMessage("kept", "ann", "long ago", None, stamped(10)))
    recent = (await backend.store(NewMessage("kept", "ann", "just now", None, utc_timestamp()))).message
    busy = await fill(backend, "busy", 3)
    [only] = await fill(backend, "emptied", 1)
    assert await backend.delete_message("busy", busy[0].id)
    assert await backend.delete_message("emptied", only.id)
    assert await backend.delete_message("kept", recent.id)
    summaries = {summary.label: summary for summary in await backend.busiest_rooms(10)}
    assert {label: summary.message_count for label, summary in summaries.items()} == {"busy": 2, "kept": 1}
    assert summaries["busy"].last_active is not None
    # The room's newest message ever stored, deleted or not, is what keeps it from expiring.
    assert await backend.expire_rooms(stamped(7)) == 0
    assert [m.message for m in (await backend.history("kept", 10)).messages] == ["long ago"]


# -- moderation: bans and locks ------------------------------------------------------------------------


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
    # What changes nothing tells nobody: notices come in order, so a change made after them comes next.
    assert not await backend.lift_ban(ban.id)
    await backend.set_locked("lobby", True)
    await backend.set_locked("other", False)
    await backend.bans()
    await backend.locked_rooms()
    await backend.set_locked("lobby", False)
    await eventually(lambda: recorder.moderation_changes >= 4)
    # A notice names no change, so the marker (the fourth) cannot be told from a notice too many: wait a while.
    await asyncio.sleep(0.2)
    assert recorder.moderation_changes == 4
    [message] = await fill(backend, "lobby", 1)
    assert await backend.delete_message("lobby", message.id)
    await eventually(lambda: recorder.deletions)
    assert recorder.moderation_changes == 4  # a deletion is told as a deletion
