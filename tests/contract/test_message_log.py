"""The room's log (backends/base.py, "A room's history is a log"; backends/changes.py): edits, deletions
and reactions take positions in their room's order among its messages, reads show messages as they now
stand, and a replay from a position answers the changes made since to the messages before it. Run against
every factory in tests/support/factories/ through the shared ``make_backend`` fixture."""

from __future__ import annotations

import pytest

from backends.base import AddressQuota, Backend, NewMessage, StoredMessage, utc_timestamp
from backends.changes import MAX_REACTION_KINDS, ChangeKind, MessageChange
from backends.errors import InvalidMessageId, MessageNotFound, NotAuthor, ReplyToMissing, TooManyReactions
from tests.support.recorder import Recorder
from tests.support.waiting import eventually

ANN, BOB = "key:" + "a" * 64, "sub:bob"
EDITED = "2026-12-06T12:00:00.000001+00:00"


async def changing_backend(make_backend, **options) -> tuple[Backend, Recorder]:
    backend = await make_backend(**options)
    recorder = Recorder()
    backend.set_delivery_target(recorder)
    await backend.subscribe("lobby")
    return backend, recorder


async def said(
    backend: Backend, text: str, author: str | None = ANN, room: str = "lobby", **fields: str
) -> StoredMessage:
    message = NewMessage(room, "ann", text, fields.pop("client_id", None), utc_timestamp(), author=author, **fields)
    return (await backend.store(message)).message


def key(backend: Backend, position: str) -> tuple[int, ...]:
    return backend.id_key(position)


@pytest.mark.gen_test(timeout=30)
async def test_changes_take_positions_among_messages_and_arrive_in_the_room_s_order(make_backend):
    backend, recorder = await changing_backend(make_backend)
    first = await said(backend, "one")
    edit = await backend.edit_message("lobby", first.id, "one!", EDITED, frozenset({ANN}))
    reactions = await backend.react("lobby", first.id, "handle:bob", "👍", True)
    second = await said(backend, "two")
    assert reactions is not None
    assert edit == MessageChange("lobby", first.id, edit.at, ChangeKind.EDIT, message="one!", edited=EDITED)
    assert reactions == MessageChange("lobby", first.id, reactions.at, ChangeKind.REACTIONS, reactions=(("👍", 1),))
    positions = [first.id, edit.at, reactions.at, second.id]
    assert [key(backend, p) for p in positions] == sorted({key(backend, p) for p in positions})
    await eventually(lambda: len(recorder.events) == 4)
    assert recorder.events == [
        ("deliver", "lobby", first.id),
        ("edit", "lobby", first.id),
        ("reactions", "lobby", first.id),
        ("deliver", "lobby", second.id),
    ]
    assert recorder.changes == [edit, reactions]


@pytest.mark.gen_test(timeout=30)
async def test_reads_show_each_message_as_it_now_stands(make_backend):
    backend, _ = await changing_backend(make_backend)
    first = await said(backend, "question", client_id="c-1")
    reply = await said(backend, "answer", reply_to=first.id)
    assert (reply.reply_to, reply.author, reply.edited, reply.reactions) == (first.id, ANN, None, ())
    await backend.edit_message("lobby", first.id, "question?", EDITED, frozenset({ANN, BOB}))
    await backend.react("lobby", first.id, "handle:bob", "🎉", True)
    await backend.react("lobby", first.id, "sub:carol", "🎉", True)
    await backend.react("lobby", first.id, "sub:carol", "👍", True)
    now = first._replace(message="question?", edited=EDITED, reactions=(("🎉", 2), ("👍", 1)))
    assert (await backend.history("lobby", 10)).messages == [now, reply]
    assert (await backend.history("lobby", 10, after="0")).messages == [now, reply]
    assert await backend.message("lobby", first.id) == now
    assert (await backend.replay("lobby", "0", 10)).page.messages == [now, reply]
    resent = await backend.store(NewMessage("lobby", "ann", "question", "c-1", utc_timestamp(), author=ANN))
    assert resent.duplicate and resent.message == now


@pytest.mark.gen_test(timeout=30)
async def test_every_refused_change_raises_its_error_and_changes_nothing(make_backend):
    backend, recorder = await changing_backend(make_backend)
    mine = await said(backend, "mine")
    nobody_s = await said(backend, "sent with no key", author=None)
    gone = await said(backend, "gone")
    elsewhere = await said(backend, "elsewhere", room="other")
    # Ids are a room's own: on Redis two rooms' messages of the same millisecond have the same id, and one of
    # this room's would then be found. Another room's id here is one this room holds no message under.
    while elsewhere.id in (mine.id, nobody_s.id, gone.id):
        elsewhere = await said(backend, "elsewhere", room="other")
    assert await backend.delete_message("lobby", gone.id)
    missing = [elsewhere.id, gone.id]
    for message_id in missing:
        with pytest.raises(MessageNotFound):
            await backend.edit_message("lobby", message_id, "x", EDITED, frozenset({ANN}))
        with pytest.raises(MessageNotFound):
            await backend.react("lobby", message_id, "sub:bob", "👍", True)
        assert not await backend.delete_message("lobby", message_id, frozenset({ANN}))
    for message_id, authors in ((mine.id, frozenset({BOB})), (mine.id, frozenset()), (nobody_s.id, frozenset({ANN}))):
        with pytest.raises(NotAuthor):
            await backend.edit_message("lobby", message_id, "x", EDITED, authors)
        with pytest.raises(NotAuthor):
            await backend.delete_message("lobby", message_id, authors)
    with pytest.raises(InvalidMessageId):
        await backend.edit_message("lobby", "not an id", "x", EDITED, frozenset({ANN}))
    with pytest.raises(ReplyToMissing):
        await said(backend, "to nowhere", reply_to=elsewhere.id)
    with pytest.raises(ReplyToMissing):
        await said(backend, "to a deleted one", reply_to=gone.id)
    assert (await backend.history("lobby", 10)).messages == [mine, nobody_s]
    await eventually(lambda: len(recorder.changes) == 1)
    assert [change.kind for change in recorder.changes] == [ChangeKind.DELETE]


@pytest.mark.gen_test(timeout=30)
async def test_a_reaction_counts_once_per_reactor_and_a_message_takes_at_most_twenty_emoji(make_backend):
    backend, _ = await changing_backend(make_backend)
    message = await said(backend, "react")
    assert await backend.react("lobby", message.id, "sub:bob", "👍", False) is None  # nothing to take back
    added = await backend.react("lobby", message.id, "sub:bob", "👍", True)
    assert added is not None and added.reactions == (("👍", 1),)
    assert await backend.react("lobby", message.id, "sub:bob", "👍", True) is None
    taken = await backend.react("lobby", message.id, "sub:bob", "👍", False)
    assert taken is not None and taken.reactions == ()
    emoji = [chr(0x1F600 + n) for n in range(MAX_REACTION_KINDS)]
    for symbol in emoji:
        await backend.react("lobby", message.id, "sub:bob", symbol, True)
    with pytest.raises(TooManyReactions):
        await backend.react("lobby", message.id, "sub:carol", "🎉", True)
    again = await backend.react("lobby", message.id, "sub:carol", emoji[0], True)
    assert again is not None and again.reactions[0] == (emoji[0], 2) and len(again.reactions) == MAX_REACTION_KINDS
    assert (await backend.message("lobby", message.id)).reactions == again.reactions  # type: ignore[union-attr]


@pytest.mark.gen_test(timeout=30)
async def test_a_deletion_takes_a_position_whoever_makes_it(make_backend):
    backend, recorder = await changing_backend(make_backend)
    by_author, by_moderator, after = await said(backend, "a"), await said(backend, "b"), await said(backend, "c")
    assert await backend.delete_message("lobby", by_author.id, frozenset({ANN}))
    assert await backend.delete_message("lobby", by_moderator.id)
    await eventually(lambda: len(recorder.changes) == 2)
    deletions = recorder.changes
    assert [(change.kind, change.id) for change in deletions] == [
        (ChangeKind.DELETE, by_author.id),
        (ChangeKind.DELETE, by_moderator.id),
    ]
    assert key(backend, after.id) < key(backend, deletions[0].at) < key(backend, deletions[1].at)
    assert recorder.deletions == [("lobby", by_author.id), ("lobby", by_moderator.id)]
    assert [room.message_count for room in await backend.busiest_rooms(5)] == [1]


@pytest.mark.gen_test(timeout=30)
async def test_a_replay_from_a_position_answers_the_changes_since_to_the_messages_before_it(make_backend):
    backend, _ = await changing_backend(make_backend)
    first, second = await said(backend, "one"), await said(backend, "two")
    since = second.id
    edit = await backend.edit_message("lobby", first.id, "one!", EDITED, frozenset({ANN}))
    react = await backend.react("lobby", second.id, "sub:bob", "👍", True)
    third = await said(backend, "three")
    await backend.edit_message("lobby", third.id, "three!", EDITED, frozenset({ANN}))  # in the message itself
    fourth = await said(backend, "four")
    assert await backend.delete_message("lobby", first.id, frozenset({ANN}))
    replay = await backend.replay("lobby", since, 10, origin=since)
    assert not replay.gap and replay.after == since
    assert [m.message for m in replay.page.messages] == ["three!", "four"]
    kinds = [(change.kind, change.id) for change in replay.changes]
    # The edit of a message deleted since is moot: only its deletion is told.
    assert kinds == [(ChangeKind.REACTIONS, second.id), (ChangeKind.DELETE, first.id)]
    assert replay.changes[0] == react and edit not in replay.changes
    # Page by page: each page's changes are those up to where it ends.
    first_page = await backend.replay("lobby", since, 1, origin=since)
    assert [m.id for m in first_page.page.messages] == [third.id] and first_page.page.has_more
    assert list(first_page.changes) == [react]
    rest = await backend.replay("lobby", third.id, 10, origin=since)
    assert [m.id for m in rest.page.messages] == [fourth.id]
    assert [change.kind for change in rest.changes] == [ChangeKind.DELETE]
    # Without an origin: messages only, as before there were changes.
    assert (await backend.replay("lobby", since, 10)).changes == ()


@pytest.mark.gen_test(timeout=30)
async def test_changes_go_with_their_messages_when_pruned_and_a_gap_stays_exact(make_backend):
    backend, _ = await changing_backend(make_backend, retain_per_room=5)
    old = await said(backend, "old")
    await backend.edit_message("lobby", old.id, "old!", EDITED, frozenset({ANN}))
    stored = [await said(backend, f"message {n}") for n in range(40)]
    edit = await backend.edit_message("lobby", stored[-1].id, "last!", EDITED, frozenset({ANN}))

    async def pruned() -> bool:
        return (await backend.message("lobby", old.id)) is None

    await eventually(pruned, timeout=5, interval=0.1, message="the oldest message pruned")
    replay = await backend.replay("lobby", old.id, 200, origin=old.id)
    assert replay.gap and all(change.id != old.id for change in replay.changes)
    latest = await backend.replay("lobby", stored[-1].id, 200, origin=stored[-1].id)
    assert not latest.gap and list(latest.changes) == [edit]
    with pytest.raises(MessageNotFound):
        await backend.edit_message("lobby", old.id, "back", EDITED, frozenset({ANN}))


@pytest.mark.gen_test(timeout=30)
async def test_an_expired_room_takes_its_changes_with_it(make_backend):
    backend, _ = await changing_backend(make_backend)
    message = await said(backend, "idle")
    await backend.react("lobby", message.id, "sub:bob", "👍", True)
    assert await backend.expire_rooms("9999-01-01T00:00:00+00:00") == 1
    assert (await backend.history("lobby", 10)).messages == []
    assert (await backend.replay("lobby", "0", 10, origin="0")).changes == ()
    fresh = await said(backend, "new again")
    assert fresh.reactions == () and (await backend.history("lobby", 10)).messages == [fresh]


@pytest.mark.gen_test(timeout=30)
async def test_a_reply_in_a_room_with_no_history_stores_nothing_not_even_the_room(make_backend):
    quota = AddressQuota(new_rooms_per_hour=1, messages_per_second=1000, burst=1000)
    backend, _ = await changing_backend(make_backend, quota=quota)
    elsewhere = await said(backend, "elsewhere", room="other", sender="192.0.2.9")  # spends no room of 192.0.2.7
    with pytest.raises(ReplyToMissing):
        await said(backend, "into nothing", room="empty", reply_to=elsewhere.id, sender="192.0.2.7")
    # The refused reply made no room: the address may still make its one new room.
    fresh = await said(backend, "a first message", room="fresh", sender="192.0.2.7")
    assert (await backend.history("fresh", 10)).messages == [fresh]
    assert sorted(room.label for room in await backend.busiest_rooms(10)) == ["fresh", "other"]
