"""The backend contract (backends/base.py), storing and delivering: ids, history pages, delivery in store
order, resends, who sent a message, text kept exactly, health.

A backend adds a factory; it never copies a test from the contract modules.

Run against every backend factory in tests/support/factories/ (the ``make_backend`` fixture).
"""

from __future__ import annotations

import asyncio

import pytest

from backends.base import NewMessage, StoredMessage, utc_timestamp
from backends.errors import InvalidMessageId
from tests.support.messages import fill, new_message, store, store_soon
from tests.support.recorder import Recorder, subscribed_backend


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
async def test_stores_started_together_each_keep_the_fields_they_set_and_only_those(make_backend):
    backend = await make_backend()
    earlier = (await store(backend, "lobby", "ann", "first")).message
    key = "key:" + "e" * 64

    def sent(text: str, **fields: object) -> NewMessage:
        return NewMessage("lobby", "bob", text, None, utc_timestamp())._replace(**fields)

    batches = [
        [sent("plain"), sent("id", client_id="c-1"), sent("plain again")],
        [sent("who", user="user-1", moderator=True), sent("reply", reply_to=earlier.id), sent("authored", author=key)],
        [sent("all", client_id="c-2", user="user-2", moderator=True, reply_to=earlier.id, author=key), sent("none")],
        [sent("none either"), sent("nor this")],
    ]
    for batch in batches:  # each started in one go, so the SQL writer stores it as one batch
        stored = [result.message for result in await asyncio.gather(*(backend.store_soon(m) for m in batch))]
        fields = [(m.message, m.client_id, m.user, m.moderator, m.reply_to, m.author) for m in stored]
        assert fields == [(m.message, m.client_id, m.user, m.moderator, m.reply_to, m.author) for m in batch]
    history = (await backend.history("lobby", 20)).messages
    assert [m.message for m in history] == ["first", *(m.message for batch in batches for m in batch)]
    assert [(m.user, m.moderator, m.reply_to) for m in history if m.message == "all"] == [("user-2", True, earlier.id)]
    assert all((m.client_id, m.user, m.moderator, m.reply_to) == (None, None, False, None) for m in history[-3:])


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
async def test_health_passes_on_a_started_backend(make_backend, backend_name):
    backend = await make_backend()
    await backend.health()
    assert backend.kind == backend_name  # each factory is named after the kind it makes
