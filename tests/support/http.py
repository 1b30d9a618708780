"""Plain HTTP requests to the application under test, answered whatever their status, redirects not followed."""

from __future__ import annotations

import json
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPResponse

MESSAGES = "/api/rooms/lobby/messages"
HELLO = json.dumps({"handle": "ann", "message": "hello"})


async def fetch(http_client: AsyncHTTPClient, port: int, path: str, **options: Any) -> HTTPResponse:
    options.setdefault("raise_error", False)
    options.setdefault("follow_redirects", False)
    return await http_client.fetch(f"http://127.0.0.1:{port}{path}", **options)


async def post(http_client: AsyncHTTPClient, port: int, headers: dict[str, str], body: str = HELLO) -> HTTPResponse:
    """A message POSTed to lobby with ``headers``."""
    return await fetch(http_client, port, MESSAGES, method="POST", body=body, headers=headers)


async def stored(http_client: AsyncHTTPClient, port: int, host: str = "127.0.0.1") -> list[str]:
    """The texts of the messages stored in lobby, as the API answers them."""
    response = await fetch(http_client, port, MESSAGES, headers={"Host": host})
    return [m["message"] for m in json.loads(response.body)["messages"]]
