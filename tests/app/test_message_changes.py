"""Messages that change, over real sockets and HTTP (docs/protocol.md, "Messages that change"): replies,
edits, deletions by their author and reactions, every refusal with its exact error and nothing changed,
and the frames each socket gets by the features it asked for. On the memory backend; the store's side is
the contract suite's (tests/contract/test_message_log.py)."""

from __future__ import annotations

import pytest

from tests.support.apps import app_config
from tests.support.changes import ANN_KEY, BOB_KEY, assert_delete_frame
from tests.support.clients import assert_next_is_marker, connect, receive_json, send_json
from tests.support.moderation import call, moderated_config
from tests.support.tokens import MODERATOR_TOKEN, claims, hs256

ALL = "edits,deletes,reactions"


@pytest.fixture
def config():
    return moderated_config()


async def said(ws, handle: str, text: str, **fields) -> dict:
    """Send a message from ``ws`` and read its broadcast back."""
    await send_json(ws, {"handle": handle, "message": text, **fields})
    frame = await receive_json(ws)
    assert frame["type"] == "message" and frame["message"] == text, frame
    return frame


async def error_of(ws, frame: dict) -> dict:
    await send_json(ws, frame)
    answer = await receive_json(ws)
    assert answer["type"] == "error", answer
    return answer


async def history(http_client, port, room="lobby") -> list[dict]:
    code, page = await call(http_client, port, "GET", f"/api/rooms/{room}/messages", token=None)
    assert code == 200
    return page["messages"]


# -- replies ---------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_reply_carries_reply_to_for_every_client_and_one_to_nowhere_is_refused(
    http_server, http_port, http_client
):
    ann, seed = await connect(http_port, "lobby"), await connect(http_port, "lobby")
    first = await said(ann, "ann", "question")
    await receive_json(seed)
    reply = await said(ann, "ann", "answer", reply_to=first["id"])
    assert reply["reply_to"] == first["id"] and (await receive_json(seed)) == reply
    elsewhere = await said(await connect(http_port, "other"), "bob", "elsewhere")
    for nowhere in (elsewhere["id"], "999", "not-an-id"):
        error = await error_of(ann, {"handle": "ann", "message": "lost", "reply_to": nowhere})
        assert error["code"] == "invalid_message" and "reply_to" in error["error"]
    body = {"handle": "ann", "message": "lost", "reply_to": elsewhere["id"]}
    code, answer = await call(http_client, http_port, "POST", "/api/rooms/lobby/messages", body, token=None)
    assert code == 400 and "reply_to" in answer["error"]
    code, stored = await call(
        http_client, http_port, "POST", "/api/rooms/lobby/messages", {**body, "reply_to": first["id"]}, token=None
    )
    assert code == 201 and stored["reply_to"] == first["id"]
    assert [m.get("reply_to") for m in await history(http_client, http_port)] == [None, first["id"], first["id"]]


# -- edits -----------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_an_edit_reaches_the_sockets_that_asked_for_edits_and_history_shows_it(
    http_server, http_port, http_client
):
    ann = await connect(http_port, "lobby")
    watcher, seed = await connect(http_port, "lobby", features="edits"), await connect(http_port, "lobby")
    message = await said(ann, "ann", "helo", author_key=ANN_KEY)
    assert "author_key" not in message and (await receive_json(watcher)) == message == (await receive_json(seed))
    await send_json(ann, {"type": "edit", "id": message["id"], "message": "hello", "author_key": ANN_KEY})
    edit = await receive_json(watcher)
    assert edit == {"type": "edit", "id": message["id"], "at": edit["at"], "message": "hello", "edited": edit["edited"]}
    assert int(edit["at"]) > int(message["id"])
    marker = await assert_next_is_marker(seed)  # no frame it did not ask for
    assert await receive_json(ann) == marker  # nor the editor, which asked for none
    shown = (await history(http_client, http_port))[0]
    assert (shown["message"], shown["edited"]) == ("hello", edit["edited"]) and "author_key" not in shown


@pytest.mark.gen_test
async def test_patch_edits_as_the_author_and_refuses_anyone_else(http_server, http_port, http_client):
    ann = await connect(http_port, "lobby")
    message = await said(ann, "ann", "first", author_key=ANN_KEY)
    path = f"/api/rooms/lobby/messages/{message['id']}"
    code, edited = await call(
        http_client, http_port, "PATCH", path, {"message": "second", "author_key": ANN_KEY}, token=None
    )
    assert code == 200 and edited["message"] == "second" and edited["id"] == message["id"] and edited["edited"]
    assert "author_key" not in edited
    refusals = [
        (path, {"message": "x", "author_key": BOB_KEY}, 403),
        (path, {"message": "x"}, 403),
        (path, {"message": "", "author_key": ANN_KEY}, 400),
        (path, {"message": "x", "author_key": "short"}, 400),
        (path, {"author_key": ANN_KEY}, 400),
        ("/api/rooms/lobby/messages/424242", {"message": "x", "author_key": ANN_KEY}, 404),
        ("/api/rooms/other/messages/" + message["id"], {"message": "x", "author_key": ANN_KEY}, 404),
        ("/api/rooms/lobby/messages/nope", {"message": "x", "author_key": ANN_KEY}, 404),
    ]
    for where, body, status in refusals:
        code, answer = await call(http_client, http_port, "PATCH", where, body, token=None)
        assert (code, bool(answer["error"])) == (status, True), (where, body, answer)
    # A moderator deletes, never edits.
    code, _ = await call(http_client, http_port, "PATCH", path, {"message": "mod"}, token=MODERATOR_TOKEN)
    assert code == 403
    assert [(m["message"], m["edited"]) for m in await history(http_client, http_port)] == [
        ("second", edited["edited"])
    ]


@pytest.mark.gen_test
async def test_every_bad_edit_over_the_socket_gets_its_error_and_changes_nothing(http_server, http_port, http_client):
    ann, bob = await connect(http_port, "lobby"), await connect(http_port, "other")
    mine = await said(ann, "ann", "mine", author_key=ANN_KEY)
    theirs = await said(bob, "bob", "theirs", author_key=BOB_KEY)
    seed_message = await said(ann, "old", "no key")
    cases = [
        ({"type": "edit", "id": mine["id"], "message": "x", "author_key": BOB_KEY}, "forbidden"),
        ({"type": "edit", "id": mine["id"], "message": "x"}, "forbidden"),
        ({"type": "edit", "id": seed_message["id"], "message": "x", "author_key": ANN_KEY}, "forbidden"),
        ({"type": "edit", "id": theirs["id"], "message": "x", "author_key": BOB_KEY}, "not_found"),
        ({"type": "edit", "id": "77", "message": "x", "author_key": ANN_KEY}, "not_found"),
        ({"type": "edit", "id": mine["id"], "message": "x", "author_key": "a" * 21}, "invalid_message"),
        ({"type": "edit", "id": mine["id"], "message": "x", "author_key": "a" * 21 + "!"}, "invalid_message"),
        ({"type": "edit", "id": mine["id"], "message": " ", "author_key": ANN_KEY}, "invalid_message"),
        ({"type": "edit", "message": "x", "author_key": ANN_KEY}, "invalid_message"),
        ({"type": "delete", "id": mine["id"], "author_key": BOB_KEY}, "forbidden"),
        ({"type": "delete", "id": "77", "author_key": ANN_KEY}, "not_found"),
    ]
    for frame, code in cases:
        assert (await error_of(ann, frame))["code"] == code, frame
    assert [m["message"] for m in await history(http_client, http_port)] == ["mine", "no key"]
    assert all("edited" not in m for m in await history(http_client, http_port))


# -- deletions by the author -------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_the_author_deletes_over_the_socket_and_the_api_and_then_no_change_reaches_it(
    http_server, http_port, http_client
):
    ann, watcher = await connect(http_port, "lobby"), await connect(http_port, "lobby", features=ALL)
    first = await said(ann, "ann", "one", author_key=ANN_KEY)
    second = await said(ann, "ann", "two", author_key=ANN_KEY)
    await receive_json(watcher), await receive_json(watcher)
    await send_json(ann, {"type": "delete", "id": first["id"], "author_key": ANN_KEY})
    assert_delete_frame(await receive_json(watcher), first["id"])
    path = f"/api/rooms/lobby/messages/{second['id']}"
    assert (await call(http_client, http_port, "DELETE", path, token=None, headers={"Author-Key": BOB_KEY}))[0] == 403
    assert (await call(http_client, http_port, "DELETE", path, token=None, headers={"Author-Key": "bad"}))[0] == 400
    assert (await call(http_client, http_port, "DELETE", path, token=None))[0] == 401
    assert (await call(http_client, http_port, "DELETE", path, token=None, headers={"Author-Key": ANN_KEY}))[0] == 204
    assert_delete_frame(await receive_json(watcher), second["id"])
    assert await history(http_client, http_port) == []
    for frame in (
        {"type": "edit", "id": first["id"], "message": "back", "author_key": ANN_KEY},
        {"type": "delete", "id": first["id"], "author_key": ANN_KEY},
        {"type": "react", "id": first["id"], "emoji": "👍"},
    ):
        await send_json(ann, {"type": "hello", "handle": "ann"})
        assert (await error_of(ann, frame))["code"] == "not_found"
    code, _ = await call(http_client, http_port, "PATCH", path, {"message": "back", "author_key": ANN_KEY}, token=None)
    assert code == 404
    await assert_next_is_marker(watcher, lambda text: send_json(ann, {"handle": "m", "message": text}))


@pytest.mark.gen_test
async def test_a_token_s_sub_is_the_author_on_every_token_of_it(http_server, http_port, http_client):
    first, again, other = (hs256(claims(sub=sub, name="Ann")) for sub in ("ann", "ann", "bob"))
    ann = await connect(http_port, "lobby", headers={"Authorization": f"Bearer {first}"})
    message = await said(ann, "x", "by token", author_key=ANN_KEY)  # the sub, not the key, is the author now
    path = f"/api/rooms/lobby/messages/{message['id']}"
    assert (await call(http_client, http_port, "PATCH", path, {"message": "no"}, token=other))[0] == 403
    assert (await call(http_client, http_port, "PATCH", path, {"message": "no", "author_key": ANN_KEY}, token=None))[
        0
    ] == 403
    code, edited = await call(http_client, http_port, "PATCH", path, {"message": "yes"}, token=again)
    assert code == 200 and edited["message"] == "yes" and edited["user"] == "ann"
    assert (await call(http_client, http_port, "DELETE", path, token=other))[0] == 403
    assert (await call(http_client, http_port, "DELETE", path, token=again))[0] == 204


# -- reactions ---------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_reactions_count_once_per_reactor_and_reach_the_sockets_that_asked(http_server, http_port, http_client):
    ann, bob = await connect(http_port, "lobby", features="reactions"), await connect(http_port, "lobby")
    seed = await connect(http_port, "lobby")
    message = await said(ann, "ann", "react to me")
    await receive_json(bob), await receive_json(seed)
    react = {"type": "react", "id": message["id"], "emoji": "👍", "on": True}
    assert (await error_of(bob, react))["code"] == "invalid_message"  # no handle announced yet
    await send_json(bob, {"type": "hello", "handle": "bob"})
    await send_json(ann, {"type": "hello", "handle": "ann"})
    await send_json(bob, react)
    first = await receive_json(ann)
    assert first == {"type": "reactions", "id": message["id"], "at": first["at"], "reactions": {"👍": 1}}
    await send_json(bob, react)  # counted once however often repeated: nothing changes, nothing is told
    await send_json(ann, {**react, "emoji": "👨‍👩‍👧"})
    assert (await receive_json(ann))["reactions"] == {"👍": 1, "👨‍👩‍👧": 1}
    await send_json(ann, react)
    assert (await receive_json(ann))["reactions"] == {"👍": 2, "👨‍👩‍👧": 1}
    await send_json(bob, {**react, "on": False})
    await send_json(ann, {**react, "on": False})
    await send_json(ann, {**react, "emoji": "👨‍👩‍👧", "on": False})
    counts = [(await receive_json(ann))["reactions"] for _ in range(3)]
    assert counts == [{"👍": 1, "👨‍👩‍👧": 1}, {"👨‍👩‍👧": 1}, {}]
    await send_json(bob, {**react, "emoji": "🇫🇷"})
    assert (await receive_json(ann))["reactions"] == {"🇫🇷": 1}
    for bad in ("👍👍", "a", "", ":+1:", "👍\u200d"):
        assert (await error_of(bob, {**react, "emoji": bad}))["code"] == "invalid_message", bad
    assert (await error_of(bob, {**react, "on": "yes"}))["code"] == "invalid_message"
    assert (await error_of(bob, {**react, "id": "31337"}))["code"] == "not_found"
    await assert_next_is_marker(seed)
    assert (await history(http_client, http_port))[0]["reactions"] == {"🇫🇷": 1}


@pytest.mark.gen_test
async def test_a_message_takes_at_most_twenty_different_reactions(http_server, http_port, http_client):
    ann = await connect(http_port, "lobby")
    message = await said(ann, "ann", "popular")
    await send_json(ann, {"type": "hello", "handle": "ann"})
    emoji = [
        "😀",
        "😁",
        "😂",
        "🤣",
        "😃",
        "😄",
        "😅",
        "😆",
        "😉",
        "😊",
        "😋",
        "😎",
        "😍",
        "😘",
        "🥰",
        "😗",
        "😙",
        "🥲",
        "😚",
        "🙂",
    ]
    for symbol in emoji:
        await send_json(ann, {"type": "react", "id": message["id"], "emoji": symbol})
    error = await error_of(ann, {"type": "react", "id": message["id"], "emoji": "🤗"})
    assert error["code"] == "invalid_message" and "20" in error["error"]
    await send_json(ann, {"type": "react", "id": message["id"], "emoji": "😀"})  # one already there: fine
    assert list((await history(http_client, http_port))[0]["reactions"]) == emoji


@pytest.mark.gen_test
@pytest.mark.parametrize("config", [app_config(limits={"messages_per_second": 1, "burst": 3})])
async def test_a_flood_of_reactions_is_rate_limited_as_messages_are(http_server, http_port, http_client, config):
    ann = await connect(http_port, "lobby")
    message = await said(ann, "ann", "flooded")
    await send_json(ann, {"type": "hello", "handle": "ann"})
    for symbol in ("😀", "😁"):
        await send_json(ann, {"type": "react", "id": message["id"], "emoji": symbol})
    error = await error_of(ann, {"type": "react", "id": message["id"], "emoji": "😂"})
    assert error["code"] == "rate_limited"
    assert (await history(http_client, http_port))[0]["reactions"] == {"😀": 1, "😁": 1}


# -- bans and locks ----------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_bans_and_locks_hold_for_changes(http_server, http_port, http_client):
    ann = await connect(http_port, "lobby")
    message = await said(ann, "spammer", "spam", author_key=ANN_KEY)
    await send_json(ann, {"type": "hello", "handle": "spammer"})
    assert (await call(http_client, http_port, "POST", "/api/bans", {"handle": "spammer", "room": "lobby"}))[0] == 201
    edit = {"type": "edit", "id": message["id"], "message": "more", "author_key": ANN_KEY}
    for frame in (edit, {"type": "react", "id": message["id"], "emoji": "👍"}):
        assert (await error_of(ann, frame))["code"] == "forbidden"
    path = f"/api/rooms/lobby/messages/{message['id']}"
    assert (await call(http_client, http_port, "PATCH", path, {"message": "more", "author_key": ANN_KEY}, token=None))[
        0
    ] == 403
    assert (await call(http_client, http_port, "PATCH", "/api/rooms/lobby", {"locked": True}))[0] == 200
    other = await connect(http_port, "lobby")
    await send_json(other, {"type": "hello", "handle": "carol"})
    assert (await error_of(other, {"type": "react", "id": message["id"], "emoji": "👍"}))["code"] == "forbidden"
    assert (await history(http_client, http_port))[0]["message"] == "spam"


# -- what a socket that asked for nothing sees ---------------------------------------------------------


@pytest.mark.gen_test
async def test_a_socket_that_asked_for_no_feature_sees_exactly_the_frames_it_saw_before(
    http_server, http_port, http_client
):
    seed = await connect(http_port, "lobby")  # the 2016 client: {"handle", "message"} in, message rows out
    ann = await connect(http_port, "lobby")
    await send_json(seed, {"handle": "old", "message": "from 2016"})
    from_seed = await receive_json(seed)
    assert set(from_seed) == {"type", "id", "room", "handle", "message", "timestamp"}
    await receive_json(ann)
    mine = await said(ann, "ann", "changing", author_key=ANN_KEY)
    assert set(mine) == {"type", "id", "room", "handle", "message", "timestamp"}  # the key is never sent
    assert await receive_json(seed) == mine
    await send_json(ann, {"type": "hello", "handle": "ann"})
    await send_json(ann, {"type": "edit", "id": mine["id"], "message": "changed", "author_key": ANN_KEY})
    await send_json(ann, {"type": "react", "id": from_seed["id"], "emoji": "👍"})
    await send_json(ann, {"type": "delete", "id": mine["id"], "author_key": ANN_KEY})
    marker = await assert_next_is_marker(seed, lambda text: send_json(ann, {"handle": "m", "message": text}))
    assert set(marker) == {"type", "id", "room", "handle", "message", "timestamp"}
    # Resuming, it gets the messages after its id as they now stand, and not one change frame.
    back = await connect(http_port, "lobby", since=from_seed["id"])
    assert await receive_json(back) == marker
    await assert_next_is_marker(back)


@pytest.mark.gen_test
async def test_a_moderator_s_socket_deletes_any_message_and_the_audit_log_keeps_it(http_server, http_port, http_client):
    ann, watcher = await connect(http_port, "lobby"), await connect(http_port, "lobby", features="deletes")
    message = await said(ann, "ann", "no key at all")
    await receive_json(watcher)
    moderator = await connect(http_port, "lobby", headers={"Authorization": f"Bearer {MODERATOR_TOKEN}"})
    await send_json(moderator, {"type": "delete", "id": message["id"]})
    assert_delete_frame(await receive_json(watcher), message["id"])
    assert (await error_of(moderator, {"type": "delete", "id": message["id"]}))["code"] == "not_found"
    code, audit = await call(http_client, http_port, "GET", "/api/audit")
    assert code == 200 and (audit["audit"][0]["action"], audit["audit"][0]["message_id"]) == ("delete", message["id"])
