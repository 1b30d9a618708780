"""The audit log over real HTTP (docs/moderation.md, "The audit log"): every moderator action kept with who
took it, ``GET /api/audit`` for moderators only, newest first, in pages, and each action one log line. On
the memory backend; the contract suite runs the log on every backend, and ``test_moderation_processes.py``
across processes."""

from __future__ import annotations

import hashlib
import logging

import pytest

from tests.support.apps import app_config
from tests.support.moderation import ban, call, say
from tests.support.tokens import MODERATOR_TOKEN, SECRET, claims, hs256

ALICE = "alice-moderator-token-0123456789abcdef"
UNNAMED = "token:" + hashlib.sha256(MODERATOR_TOKEN.encode()).hexdigest()[:8]
ROOM_MODERATOR = hs256(claims(sub="carol-7", mod=True, rooms=["lobby"]))
EVERY_ROOM_MODERATOR = hs256(claims(sub="dave-9", name="Dave", mod=True, rooms=["*"]))


@pytest.fixture
def config():
    return app_config(
        auth={"jwt_secret": SECRET},
        rooms={"private": ["hq"]},
        moderation={"tokens": [MODERATOR_TOKEN, {"name": "alice", "token": ALICE}]},
        limits={"messages_per_second": 1000, "burst": 1000},
    )


async def audit(http_client, port, query: str = "", token: str = MODERATOR_TOKEN):
    return await call(http_client, port, "GET", f"/api/audit{query}", token=token)


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "token",
    [
        None,
        "a-wrong-token-that-is-long-enough-0123456789",
        hs256(claims(name="Ann", rooms=["*"])),
        hs256(claims(mod=True, rooms=["*"], seconds=-60)),
    ],
    ids=["none", "wrong", "user", "expired moderator"],
)
async def test_the_audit_log_is_401_without_a_moderators_token(http_server, http_port, http_client, token):
    code, answer = await audit(http_client, http_port, token=token)
    assert code == 401 and answer["error"]


@pytest.mark.gen_test
async def test_every_action_is_listed_newest_first_with_who_took_it(http_server, http_port, http_client):
    port = http_port
    code, message = await say(http_client, port, "lobby", "spammer", "buy now")
    assert code == 201
    assert (await call(http_client, port, "DELETE", f"/api/rooms/lobby/messages/{message['id']}", token=ALICE))[
        0
    ] == 204
    made = await ban(http_client, port, EVERY_ROOM_MODERATOR, handle="spammer", seconds=600, reason="spam")
    by_address = await ban(http_client, port, address="203.0.113.9", room="lobby")
    assert (await call(http_client, port, "DELETE", f"/api/bans/{made['id']}", token=ALICE))[0] == 204
    assert (await call(http_client, port, "PATCH", "/api/rooms/lobby", {"locked": True}, ROOM_MODERATOR))[0] == 200
    assert (await call(http_client, port, "PATCH", "/api/rooms/lobby", {"locked": False}, ALICE))[0] == 200
    code, invite = await call(http_client, port, "POST", "/api/rooms/hq/invites", {"seconds": 3600}, ALICE)
    assert code == 201

    code, answer = await audit(http_client, port)
    assert code == 200 and answer["next"] is None
    entries = answer["audit"]
    assert [entry["id"] for entry in entries] == sorted((entry["id"] for entry in entries), reverse=True)
    assert all(entry["at"].endswith("+00:00") for entry in entries)
    shown = [{key: value for key, value in entry.items() if key not in ("id", "at")} for entry in reversed(entries)]
    nobody = {"reason": None}
    assert shown == [
        {"actor": "alice", "action": "delete", "room": "lobby", **nobody, "message_id": message["id"]},
        {
            "actor": "dave-9",
            "action": "ban",
            "room": None,
            "reason": "spam",
            "ban_id": made["id"],
            "handle": "spammer",
            "address": None,
            "seconds": 600,
        },
        {
            "actor": UNNAMED,
            "action": "ban",
            "room": "lobby",
            **nobody,
            "ban_id": by_address["id"],
            "handle": None,
            "address": "203.0.113.9",
            "seconds": None,
        },
        {
            "actor": "alice",
            "action": "lift",
            "room": None,
            **nobody,
            "ban_id": made["id"],
            "handle": "spammer",
            "address": None,
        },
        {"actor": "carol-7", "action": "lock", "room": "lobby", **nobody},
        {"actor": "alice", "action": "unlock", "room": "lobby", **nobody},
        {"actor": "alice", "action": "invite", "room": "hq", **nobody, "seconds": 3600, "expires": invite["expires"]},
    ]


@pytest.mark.gen_test
async def test_no_token_and_no_invite_code_is_ever_shown(http_server, http_port, http_client):
    code, invite = await call(http_client, http_port, "POST", "/api/rooms/hq/invites", {}, MODERATOR_TOKEN)
    assert code == 201
    await ban(http_client, http_port, ALICE, handle="spammer")
    response = await http_client.fetch(
        f"http://127.0.0.1:{http_port}/api/audit", headers={"Authorization": f"Bearer {ALICE}"}
    )
    body = response.body.decode()
    assert ALICE not in body and MODERATOR_TOKEN not in body and invite["url"].split("=")[-1] not in body
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test
async def test_pages_follow_next_until_it_is_null(http_server, http_port, http_client):
    for number in range(5):
        await call(http_client, http_port, "PATCH", f"/api/rooms/room-{number}", {"locked": True})
    rooms, query = [], "?limit=2"
    for _ in range(3):
        code, answer = await audit(http_client, http_port, query)
        assert code == 200 and len(answer["audit"]) <= 2
        rooms += [entry["room"] for entry in answer["audit"]]
        if answer["next"] is None:
            break
        assert answer["next"] == answer["audit"][-1]["id"]
        query = f"?limit=2&before={answer['next']}"
    assert rooms == [f"room-{number}" for number in reversed(range(5))] and answer["next"] is None
    code, answer = await audit(http_client, http_port, f"?before={answer['audit'][-1]['id']}")
    assert (code, answer) == (200, {"audit": [], "next": None})


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("?limit=0", "'limit'"),
        ("?limit=201", "'limit'"),
        ("?limit=ten", "'limit'"),
        ("?limit=-1", "'limit'"),
        ("?limit=" + "9" * 5000, "'limit'"),
        ("?before=0", "'before'"),
        ("?before=abc", "'before'"),
        ("?before=1.5", "'before'"),
        ("?before=" + "9" * 30, "'before'"),
    ],
)
async def test_a_bad_limit_or_before_is_a_400_saying_which(http_server, http_port, http_client, query, named):
    code, answer = await audit(http_client, http_port, query)
    assert code == 400 and list(answer) == ["error"] and answer["error"].startswith(named), answer


@pytest.mark.gen_test
async def test_a_moderator_of_some_rooms_sees_the_entries_of_those_rooms_only(http_server, http_port, http_client):
    await ban(http_client, http_port, handle="everywhere")
    await call(http_client, http_port, "PATCH", "/api/rooms/elsewhere", {"locked": True})
    for number in range(3):
        await call(http_client, http_port, "PATCH", "/api/rooms/lobby", {"locked": number % 2 == 0})
    await call(http_client, http_port, "PATCH", "/api/rooms/elsewhere", {"locked": False})
    code, answer = await audit(http_client, http_port, "?limit=2", token=ROOM_MODERATOR)
    assert code == 200 and [entry["action"] for entry in answer["audit"]] == ["lock", "unlock"]
    code, rest = await audit(http_client, http_port, f"?limit=2&before={answer['next']}", token=ROOM_MODERATOR)
    assert [(entry["room"], entry["action"]) for entry in rest["audit"]] == [("lobby", "lock")]
    assert rest["next"] is None
    assert len((await audit(http_client, http_port))[1]["audit"]) == 6


@pytest.mark.gen_test
async def test_each_action_is_one_line_of_the_audit_log_with_its_fields(http_server, http_port, http_client, caplog):
    caplog.set_level(logging.INFO, logger="rooms.audit")
    made = await ban(http_client, http_port, ALICE, handle="spammer", room="lobby", reason="spam")
    [line] = [record for record in caplog.records if record.name == "rooms.audit"]
    fields = {name: getattr(line, name) for name in ("actor", "action", "room", "reason", "ban_id", "handle")}
    assert fields == {
        "actor": "alice",
        "action": "ban",
        "room": "lobby",
        "reason": "spam",
        "ban_id": made["id"],
        "handle": "spammer",
    }
    assert isinstance(line.id, int) and line.at
    assert "alice" in line.getMessage() and "ban" in line.getMessage() and ALICE not in line.getMessage()
