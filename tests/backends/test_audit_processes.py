"""The audit log across real server.py processes on one Redis: what a moderator does through one process is
listed by the other, newest first, with who did it, and each process logs the actions taken through it."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.support.processes import ServerProcess
from tests.support.redis import REDIS_URL, delete_prefix, prefixed_url, require_redis, unique_prefix, wait_healthy
from tests.support.tokens import MODERATOR_TOKEN

ALICE = "alice-moderator-token-0123456789abcdef"
CONFIG = f"moderation:\n  tokens:\n    - {MODERATOR_TOKEN}\n    - {{name: alice, token: {ALICE}}}\n"


async def call(port: int, method: str, path: str, payload=None, token: str = MODERATOR_TOKEN):
    response = await AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        body=None if payload is None else json.dumps(payload),
        raise_error=False,
        allow_nonstandard_methods=True,
        request_timeout=10,
    )
    return response.code, json.loads(response.body) if response.body else None


@pytest.mark.gen_test(timeout=90)
async def test_on_redis_an_action_taken_on_one_process_is_listed_by_the_other():
    await require_redis()
    prefix = unique_prefix()
    servers = [ServerProcess(prefixed_url(REDIS_URL, prefix), config=CONFIG) for _ in range(2)]
    a, b = servers
    try:
        await asyncio.gather(*(wait_healthy(server) for server in servers))
        code, made = await call(a.port, "POST", "/api/bans", {"handle": "spammer", "reason": "spam"}, ALICE)
        assert code == 201, made
        assert (await call(b.port, "PATCH", "/api/rooms/quiet", {"locked": True}))[0] == 200
        assert (await call(a.port, "DELETE", f"/api/bans/{made['id']}"))[0] == 204

        listings = [await call(server.port, "GET", "/api/audit") for server in servers]
        assert listings[0] == listings[1]
        code, answer = listings[1]
        assert code == 200 and answer["next"] is None
        actions = [(entry["actor"], entry["action"], entry["room"], entry["reason"]) for entry in answer["audit"]]
        unnamed = actions[0][0]
        assert unnamed.startswith("token:") and MODERATOR_TOKEN not in json.dumps(answer)
        assert actions == [
            (unnamed, "lift", None, None),
            (unnamed, "lock", "quiet", None),
            ("alice", "ban", None, "spam"),
        ]
        assert answer["audit"][2]["ban_id"] == answer["audit"][0]["ban_id"] == made["id"]
        ids = [entry["id"] for entry in answer["audit"]]
        assert ids == sorted(ids, reverse=True)
        # Each process logged the actions taken through it, and only those.
        assert "ban by alice" in a.log() and "lift by" in a.log() and "lock by" not in a.log()
        assert "lock by" in b.log() and "ban by" not in b.log()
    finally:
        for server in servers:
            server.stop()
        await delete_prefix(REDIS_URL, prefix)
