"""The HTTP API of a rooms server reached from outside (a process, a container), with the standard library."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


def get_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return json.load(reply)


def post_message(base_url: str, room: str, handle: str, text: str) -> dict[str, Any]:
    """POST ``text`` to ``room``: the stored message (201)."""
    request = urllib.request.Request(
        f"{base_url}/api/rooms/{room}/messages",
        data=json.dumps({"handle": handle, "message": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert reply.status == 201, reply.status
        stored: dict[str, Any] = json.load(reply)
        return stored


def message_texts(base_url: str, room: str) -> list[str]:
    """The texts of the room's newest messages, oldest first, from the history API."""
    return [message["message"] for message in get_json(f"{base_url}/api/rooms/{room}/messages")["messages"]]


def wait_answering(
    base_url: str, seconds: float, still_running: Callable[[], bool], describe: Callable[[], str]
) -> Any:
    """Poll ``/healthz`` until it answers 200 (its JSON), for at most ``seconds`` (a bound, not a measurement)
    and only while ``still_running()``; else AssertionError with ``describe()`` (the server's log)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not still_running():
            raise AssertionError(f"the server stopped before answering /healthz:\n{describe()}")
        try:
            return get_json(f"{base_url}/healthz", timeout=2)
        except (urllib.error.URLError, http.client.HTTPException, OSError):  # not listening yet
            time.sleep(0.1)
    raise AssertionError(f"/healthz did not answer within {seconds}s:\n{describe()}")
