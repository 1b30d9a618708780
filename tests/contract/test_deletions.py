"""The backend contract (backends/base.py), moderation by deleting messages.

Run against every backend factory in tests/support/factories/ (the ``make_backend`` fixture).
"""

from __future__ import annotations

import pytest

from backends.base import NewMessage, utc_timestamp
from backends.errors import InvalidMessageId, MessageDeleted
from tests.support.messages import fill, stamped, store, store_soon
from tests.support.recorder import Recorder, subscribed_backend
from tests.support.waiting import eventually


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
