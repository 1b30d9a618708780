"""What the moderation tests share: a config with a moderator token and signed tokens, requests as a
moderator (or anyone), and sockets from an address of the test's choosing (loopback is a trusted proxy
by default, so ``X-Forwarded-For`` names the client)."""

from __future__ import annotations

import json

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.support.apps import app_config
from tests.support.clients import receive_json, send_json
from tests.support.tokens import MODERATOR_TOKEN, SECRET

BANNED = "203.0.113.9"
OTHER = "203.0.113.10"


def moderated_config():
    return app_config(
        auth={"jwt_secret": SECRET},
        rooms={"private": ["hq"]},
        moderation={"tokens": [MODERATOR_TOKEN]},
        # Senders here go faster than a person, all from loopback; the rate limit is tested elsewhere.
        limits={"messages_per_second": 1000, "burst": 1000},
    )


async def call(http_client, port, method, path, payload=None, token=MODERATOR_TOKEN, headers=None, body=None):
    """``(status, decoded JSON body or None)`` of one request."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if payload is not None or body is not None:
        sent.setdefault("Content-Type", "application/json")
        body = json.dumps(payload) if body is None else body
    response = await http_client.fetch(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        headers=sent,
        body=body,
        raise_error=False,
        allow_nonstandard_methods=True,
    )
    decoded = json.loads(response.body) if response.body else None
    return response.code, decoded


async def say(http_client, port, room, handle, text, address=None, token=None):
    headers = {} if address is None else {"X-Forwarded-For": address}
    return await call(
        http_client, port, "POST", f"/api/rooms/{room}/messages", {"handle": handle, "message": text}, token, headers
    )


async def socket_from(port: int, room: str, address: str | None = None, token: str | None = None, features=None):
    query = "&".join(
        f"{name}={value}" for name, value in (("token", token), ("features", features)) if value is not None
    )
    url = f"ws://127.0.0.1:{port}/chat/{room}/" + (f"?{query}" if query else "")
    headers = {} if address is None else {"X-Forwarded-For": address}
    return await websocket_connect(HTTPRequest(url, headers=headers))


async def handshake(port: int, room: str, address: str | None = None, token: str | None = None) -> int:
    try:
        ws = await socket_from(port, room, address, token)
    except HTTPClientError as exc:
        return exc.code
    ws.close()
    return 101


async def texts(app, room: str) -> list[str]:
    return [m.message for m in (await app.hub.history(room, 200, None, None)).messages]


async def ban(http_client, port, token=MODERATOR_TOKEN, **fields) -> dict:
    code, answer = await call(http_client, port, "POST", "/api/bans", fields, token)
    assert code == 201, answer
    return answer


async def assert_forbidden(ws) -> dict:
    await send_json(ws, {"handle": "spammer", "message": "buy now"})
    error = await receive_json(ws)
    assert (error["type"], error["code"]) == ("error", "forbidden"), error
    return error
