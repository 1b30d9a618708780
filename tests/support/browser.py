"""Chromium and ``server.py`` for the browser tests: the system's Chromium (never a download), a server that
can be stopped and started again, a proxy that can cut a page's socket, and the steps every page test takes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.processes import ServerProcess
from tests.support.tcp_proxy import TCPProxy

# Without the background-networking flags Chromium keeps dialling out, which a closed network refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000
# After a server restart the page waits out its backoff (a few seconds at most for the first tries).
RECONNECT_WAIT_MS = 40_000
# The server coalesces presence frames to two a second; a page that closed leaves at once.
PRESENCE_WAIT_MS = 3_000


def chromium_executable() -> str:
    path = os.environ.get("ROOMS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    reason = "Chromium is not installed (Debian/Ubuntu: apt-get install -y chromium), or set ROOMS_CHROMIUM"
    if os.environ.get("CI"):  # as for the services (tests/support/factories): under CI nothing skips
        pytest.fail(reason)
    pytest.skip(reason)


class RoomsServer:
    """``server.py`` on a fixed port with the memory backend (and ``config``, YAML); can be stopped and started
    again."""

    def __init__(self, port: int, config: str = "") -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.config = config
        self.process: ServerProcess | None = None

    def start(self) -> None:
        self.process = ServerProcess("memory://", port=self.port, config=self.config)
        try:
            self.process.wait_healthy()
        except AssertionError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def post(self, room: str, handle: str, message: str, client_id: str | None = None) -> None:
        fields = {"handle": handle, "message": message}
        if client_id is not None:
            fields["client_id"] = client_id
        body = json.dumps(fields).encode()
        request = urllib.request.Request(
            f"{self.url}/api/rooms/{room}/messages",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.status == 201


async def _call(function: Callable[[], None]) -> None:
    function()


class ProxyThread:
    """A TCPProxy in front of the server, on an event loop of its own thread (these tests are synchronous):
    cutting it drops the page's socket while the server, and the room's history, keep running."""

    def __init__(self, target_port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._proxy: TCPProxy = self._run(TCPProxy("127.0.0.1", target_port).start())
        self.url = f"http://127.0.0.1:{self._proxy.port}"

    def _run(self, coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def cut(self) -> None:
        self._run(_call(self._proxy.cut))

    def restore(self) -> None:
        self._run(_call(self._proxy.restore))

    def close(self) -> None:
        self._run(self._proxy.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def open_room(context: BrowserContext, base_url: str, room: str) -> Page:
    page = context.new_page()
    page.goto(f"{base_url}/{room}/")
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    return page


def send(page: Page, handle: str, message: str) -> None:
    page.fill("#handle", handle)
    page.fill("#message", message)
    page.press("#message", "Enter")


def post_many(server: RoomsServer, room: str, texts: list[str], handle: str = "ann") -> None:
    """Posts each text in order, waiting out the per-address limit (429) where a long run meets it."""
    for text in texts:
        for _ in range(200):
            try:
                server.post(room, handle, text)
                break
            except urllib.error.HTTPError as refused:
                if refused.code != 429:
                    raise
                time.sleep(0.1)
        else:
            raise AssertionError(f"still rate limited posting {text!r}")


def named(page: Page, handle: str) -> None:
    """Types a name and leaves the field, as a reader does: the page announces it (hello) on change."""
    page.fill("#handle", handle)
    page.press("#handle", "Enter")


def hide(page: Page) -> None:
    """Headless Chromium cannot hide a tab: the page is told it is hidden, as the browser would tell it."""
    page.evaluate(
        """() => {
            Object.defineProperty(document, "visibilityState", { get: () => "hidden", configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )


def show(page: Page) -> None:
    page.evaluate(
        """() => {
            Object.defineProperty(document, "visibilityState", { get: () => "visible", configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
