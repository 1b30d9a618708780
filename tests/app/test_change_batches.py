"""Messages and changes to them that reach the room's sockets in one loop turn go out in one batch: each
socket gets them in the room's one order, and only the changes of the features it asked for."""

from __future__ import annotations

import pytest

from backends.base import utc_timestamp
from backends.messages import NewMessage
from tests.support.clients import assert_next_is_marker, connect, receive_json

AUTHOR = "author-of-the-batch"


@pytest.mark.gen_test
async def test_messages_and_changes_of_one_turn_reach_each_socket_in_order_and_by_its_features(
    http_server, http_port, app_backend
):
    everything = await connect(http_port, "lobby", features="edits,deletes,reactions")
    reactions_only = await connect(http_port, "lobby", features="reactions")
    plain = await connect(http_port, "lobby")

    async def store(text: str) -> str:
        message = NewMessage("lobby", "ann", text, None, utc_timestamp(), author=AUTHOR)
        return (await app_backend.store(message)).message.id

    # The memory store delivers as it stores, and none of these awaits yields to the loop: all of it
    # reaches the fan-out within one turn, before its batch is written.
    first, second = await store("first"), await store("second")
    await app_backend.edit_message("lobby", first, "first, edited", utc_timestamp(), frozenset({AUTHOR}))
    await app_backend.react("lobby", second, "bob", "👍", True)
    third = await store("third")
    await app_backend.delete_message("lobby", first)
    await app_backend.react("lobby", third, "bob", "🎉", True)
    fourth = await store("fourth")

    async def received(ws, count: int) -> list[tuple[str, str]]:
        frames = [await receive_json(ws) for _ in range(count)]
        positions = [int(frame.get("at", frame["id"])) for frame in frames]
        assert positions == sorted(positions), frames
        return [(frame["type"], frame["id"]) for frame in frames]

    assert await received(everything, 8) == [
        ("message", first),
        ("message", second),
        ("edit", first),
        ("reactions", second),
        ("message", third),
        ("delete", first),
        ("reactions", third),
        ("message", fourth),
    ]
    assert await received(reactions_only, 6) == [
        ("message", first),
        ("message", second),
        ("reactions", second),
        ("message", third),
        ("reactions", third),
        ("message", fourth),
    ]
    assert await received(plain, 4) == [
        ("message", first),
        ("message", second),
        ("message", third),
        ("message", fourth),
    ]
    # Nothing else was on its way: a marker stored now is the next frame of each.
    marker = await assert_next_is_marker(plain, send=store)
    for ws in (everything, reactions_only):
        assert await receive_json(ws) == marker
