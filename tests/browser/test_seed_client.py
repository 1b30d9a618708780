"""The seed's own client, the Django Channels chat example's page script (2016), in a real headless Chromium
against ``server.py``: while others in its room come and go, announce their handles and type, it gets
message frames only, and so renders one row per message and nothing else (docs/protocol.md, "Features a socket
asks for").

The page is made of files, and nothing is fetched from the network at test time:

- ``tests/browser/seed_client/chat.js``: the example's ``chat/static/chat.js``, verbatim; ``room.html``: its room
  page, reduced to the form and the table the script uses.
- jQuery: the PyPI package ``XStatic-jQuery`` (pinned in ``requirements-dev.txt``), which ships
  ``jquery.min.js`` inside the wheel. The seed bundled jQuery 1.12.1; its script uses only ``$(fn)``,
  ``.text``, ``.append``, ``.on``, ``.val`` and ``.focus``, which behave the same in the 3.7 line, so the
  maintained release is used.
- ReconnectingWebSocket (joewalnes/reconnecting-websocket, MIT): the original file, from the npm package
  ``reconnectingwebsocket`` 1.0.0, pinned with its integrity hash in ``tests/browser/seed_client/package-lock.json``
  and installed with ``npm ci --prefix tests/browser/seed_client`` (``.ci/run`` does it). Its
  ``reconnecting-websocket.min.js`` is byte for byte the one the seed bundled (sha256 ``SEED_RWS_SHA256``).
  No Python package ships it.

Playwright's ``page.route`` answers ``http://127.0.0.1:<port>/<label>/`` and the scripts under
``/seed-static/`` with those files, so the script, which builds its socket URL from
``window.location.pathname``, opens ``/chat/<label>/`` on the real server, with the server's own Origin.
``page.route`` does not touch WebSockets (only ``page.route_web_socket`` would): the test checks that the
socket reached the real server.

The others in the room are sockets that ask for every feature (``tests.support.redis.Peer``, on an event
loop of their own thread, as these tests are synchronous) and a page of our own room page; messages come
from the seed page's form, the sockets, our page and the API.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, NoReturn, TypeVar

import pytest
from playwright.sync_api import Page, Route, WebSocket, expect

from tests.support.browser import WAIT_MS, open_room, send
from tests.support.clients import send_json
from tests.support.redis import Peer

pytestmark = pytest.mark.timeout(180)

SEED_CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed_client")
RWS_PACKAGE = os.path.join(SEED_CLIENT, "node_modules", "reconnectingwebsocket")
# sha256 of static/reconnecting-websocket.min.js as the Django Channels chat example shipped it.
SEED_RWS_SHA256 = "03827095c0efa8ee095e9bc4b6f598d511fc24010cbb95b6d703fc1945cb50db"
ALL = "presence,typing,deletes"
TYPING_EVERY = 0.25  # seconds; the server relays at most one typing frame per 2 s per socket, drops the rest

T = TypeVar("T")


def jquery_file() -> str:
    try:
        import xstatic.pkg.jquery
    except ImportError:
        missing("XStatic-jQuery is not installed (pip install -r requirements-dev.txt)")
    return os.path.join(xstatic.pkg.jquery.BASE_DIR, "jquery.min.js")


def reconnecting_websocket_file() -> str:
    path = os.path.join(RWS_PACKAGE, "reconnecting-websocket.min.js")
    if not os.path.exists(path):
        missing("the npm package reconnectingwebsocket is not installed (npm ci --prefix tests/browser/seed_client)")
    return path


def missing(reason: str) -> NoReturn:
    if os.environ.get("CI"):  # as for Chromium: under CI nothing skips
        pytest.fail(reason)
    pytest.skip(reason)


def read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


class LoopThread:
    """An asyncio event loop on a thread of its own, for socket peers beside Playwright's synchronous API."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_the_rest() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def peers_loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


def presence(peer: Peer) -> list[tuple[int, list[str]]]:
    return [(frame["online"], frame["handles"]) for frame in peer.frames if frame.get("type") == "presence"]


def typists(peer: Peer) -> list[str]:
    return [frame["handle"] for frame in peer.frames if frame.get("type") == "typing"]


class Participants:
    """The room's other members: sockets that asked for every feature, driven from the test's thread."""

    def __init__(self, loop: LoopThread, port: int, room: str) -> None:
        self.loop = loop
        self.port = port
        self.room = room
        self.peers: dict[str, Peer] = {}
        self._chatter: concurrent.futures.Future[None] | None = None

    def join(self, name: str) -> Peer:
        async def join() -> Peer:
            peer = await Peer.join(self.port, self.room, name, since=None, features=ALL)
            await send_json(peer.ws, {"type": "hello", "handle": name})
            return peer

        self.peers[name] = peer = self.loop.run(join())
        return peer

    def leave(self, name: str) -> None:
        self.loop.run(self.peers.pop(name).close())

    def say(self, name: str, message: str) -> None:
        self.loop.run(send_json(self.peers[name].ws, {"handle": name, "message": message}))

    def rename(self, name: str, handle: str) -> None:
        self.loop.run(send_json(self.peers[name].ws, {"type": "hello", "handle": handle}))

    def type_once(self, name: str) -> None:
        self.loop.run(send_json(self.peers[name].ws, {"type": "typing"}))

    def wait(self, peer: Peer, predicate: Callable[[Peer], object], what: str, timeout: float = 15) -> None:
        try:
            self.loop.run(peer.wait_until(predicate, timeout), timeout + 5)
        except TimeoutError:
            raise AssertionError(
                f"{peer.name} did not see {what} within {timeout}s; its frames: {peer.frames}"
            ) from None

    def keep_typing(self, names: list[str]) -> None:
        """From now on ``names`` type without pause, as someone composing a long message does."""

        async def chatter() -> None:
            while True:
                for name in names:
                    if name in self.peers:
                        await send_json(self.peers[name].ws, {"type": "typing"})
                await asyncio.sleep(TYPING_EVERY)

        self._chatter = asyncio.run_coroutine_threadsafe(chatter(), self.loop.loop)

    def stop_typing(self) -> None:
        if self._chatter is not None:
            self._chatter.cancel()

    def close(self) -> None:
        self.stop_typing()
        for name in list(self.peers):
            self.leave(name)


@pytest.fixture
def seed_files() -> dict[str, tuple[str, bytes]]:
    """The seed page's files by the path it has them at (a room's page at ``/``), with their content types."""
    return {
        "/": ("text/html; charset=utf-8", read(os.path.join(SEED_CLIENT, "room.html"))),
        "/seed-static/jquery.min.js": ("text/javascript", read(jquery_file())),
        "/seed-static/reconnecting-websocket.min.js": ("text/javascript", read(reconnecting_websocket_file())),
        "/seed-static/chat.js": ("text/javascript", read(os.path.join(SEED_CLIENT, "chat.js"))),
    }


def open_seed_page(
    page: Page, seed_files: dict[str, tuple[str, bytes]], base_url: str, room: str
) -> tuple[list[WebSocket], list[str]]:
    """The seed's room page at ``/<room>/`` of the server; the sockets it opens (as Playwright sees them) and
    every frame they receive, recorded from the moment each is created."""
    files = {f"{base_url}/{room}/" if path == "/" else base_url + path: file for path, file in seed_files.items()}

    def fulfil(route: Route) -> None:
        content_type, body = files[route.request.url]
        route.fulfill(status=200, content_type=content_type, body=body)

    for url in files:
        page.route(url, fulfil)
    # A document that Playwright fulfilled came over no connection, so Chromium counts it as public and its
    # Local Network Access checks refuse its socket to 127.0.0.1 (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS)
    # unless the user allows it: allowed here, as a user would. The server's own pages, served from 127.0.0.1,
    # are not asked.
    page.context.grant_permissions(["local-network-access"], origin=base_url)
    sockets: list[WebSocket] = []
    frames: list[str] = []

    def opened(socket: WebSocket) -> None:
        sockets.append(socket)
        socket.on("framereceived", lambda payload: frames.append(payload if isinstance(payload, str) else "<binary>"))

    page.on("websocket", opened)
    page.goto(f"{base_url}/{room}/")
    pump_until(page, lambda: sockets, "the seed page opened a socket")
    return sockets, frames


def pump_until(page: Page, condition: Callable[[], object], what: str) -> None:
    """Playwright's synchronous API hands over its events (a socket opened, a frame received) only while
    the test is in one of its calls: wait in small ones until ``condition`` holds."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_MS} ms: {what}"
        page.wait_for_timeout(20)


def seed_rows(page: Page) -> list[list[str]]:
    rows: list[list[str]] = page.evaluate(
        "Array.from(document.querySelectorAll('#chat tr'), row => Array.from(row.cells, cell => cell.textContent))"
    )
    return rows


def test_the_reconnecting_websocket_file_is_the_one_the_seed_bundled():
    assert hashlib.sha256(read(reconnecting_websocket_file())).hexdigest() == SEED_RWS_SHA256
    assert "Copyright (c) 2010-2012, Joe Walnes" in read(os.path.join(RWS_PACKAGE, "LICENSE.txt")).decode()


def test_the_seed_page_gets_only_message_rows_while_others_are_present_and_typing(
    new_context,
    server,
    peers_loop,
    seed_files,
):
    room = f"seed-{os.urandom(6).hex()}"
    server.post(room, "early", "before the seed page joined")  # history: a socket without ?since= never gets it
    others = Participants(peers_loop, server.port, room)
    try:
        watcher = others.join("watcher")
        others.join("ann")
        others.join("bob")
        ours = open_room(new_context(), server.url, room)  # our own room page, a participant too
        others.wait(watcher, lambda p: presence(p)[-1:] == [(4, ["ann", "bob", "watcher"])], "ann, bob and our page")

        seed = new_context().new_page()
        sockets, seed_frames = open_seed_page(seed, seed_files, server.url, room)
        others.wait(watcher, lambda p: presence(p)[-1][0] == 5, "the seed page's socket counted online")
        assert [socket.url for socket in sockets] == [f"ws://127.0.0.1:{server.port}/chat/{room}/"]
        joined = len(watcher.frames)  # from here on, what the room saw is what the seed page must show

        others.keep_typing(["ann", "bob"])
        sent: list[tuple[str, str]] = []

        def said(handle: str, message: str) -> None:
            """Wait until the room has it, so that the order of ``sent`` is the room's."""
            sent.append((handle, message))
            count = len(sent)
            others.wait(watcher, lambda p: len(p.messages()) == count, f"message {count}: {message!r}")
            assert (watcher.messages()[-1]["handle"], watcher.messages()[-1]["message"]) == (handle, message)

        def seed_says(handle: str, message: str) -> None:
            seed.fill("#handle", handle)
            seed.fill("#message", message)
            seed.click("#go")
            expect(seed.locator("#message")).to_have_value("")
            said(handle, message)

        others.say("ann", "hello from ann")
        said("ann", "hello from ann")
        others.wait(watcher, lambda p: {"ann", "bob"} <= set(typists(p)), "ann and bob typing")

        others.join("carol")
        others.type_once("carol")
        others.wait(watcher, lambda p: "carol" in typists(p), "carol typing")
        others.wait(watcher, lambda p: presence(p)[-1] == (6, ["ann", "bob", "carol", "watcher"]), "carol online")
        seed_says("sam", "hi from the seed form")
        server.post(room, "api-bot", "posted through the API")
        said("api-bot", "posted through the API")

        others.leave("carol")
        others.wait(watcher, lambda p: presence(p)[-1] == (5, ["ann", "bob", "watcher"]), "carol gone")
        send(ours, "dan", "from our own page")
        said("dan", "from our own page")
        # The seed form's message reached the other participants: a socket and our own page.
        from_seed = ours.locator("#chat li").filter(has_text="hi from the seed form")
        expect(from_seed.locator(".handle")).to_have_text("sam", timeout=WAIT_MS)

        others.rename("bob", "bobby")
        # Our page announced its name with its message: it is in presence from here on.
        others.wait(watcher, lambda p: presence(p)[-1] == (5, ["ann", "bobby", "dan", "watcher"]), "bob renamed bobby")
        others.say("bob", "<b>markup</b> & more")
        said("bob", "<b>markup</b> & more")
        others.join("carol")  # back for a moment, typing
        others.type_once("carol")
        others.wait(
            watcher, lambda p: presence(p)[-1] == (6, ["ann", "bobby", "carol", "dan", "watcher"]), "carol back"
        )
        seed_says("sam", "seed again")
        others.leave("carol")
        # Long enough for the server to relay more than one typing frame per typist (one per 2 s).
        others.wait(watcher, lambda p: typists(p).count("ann") >= 2 and typists(p).count("bobby") >= 2, "more typing")
        others.stop_typing()
        others.wait(watcher, lambda p: presence(p)[-1] == (5, ["ann", "bobby", "dan", "watcher"]), "carol gone again")

        # The last word: any frame due to the seed page before it would have arrived before it.
        seed_says("sam", "last word")
        messages = watcher.messages()
        # (A frame it should not have got would make a row too: the comparison below shows which.)
        pump_until(seed, lambda: seed.locator("#chat tr").count() >= len(messages), f"{len(messages)} rows")
        pump_until(seed, lambda: len(seed_frames) >= len(messages), "the seed socket's frames reported")

        assert [(message["handle"], message["message"]) for message in messages] == sent
        rows = seed_rows(seed)
        assert rows == [[message["timestamp"], message["handle"], message["message"]] for message in messages]
        for row in rows:
            assert len(row) == 3
            assert all(cell.strip() and cell != "undefined" for cell in row), row
        assert "before the seed page joined" not in {row[2] for row in rows}
        assert seed.locator("#chat b").count() == 0  # rendered as text
        # Every frame its socket received was a message, the same ones the room saw.
        assert [json.loads(frame) for frame in seed_frames] == messages

        # Meanwhile presence and typing did flow, to the sockets that asked, between the messages.
        during = watcher.frames[joined:]
        kinds = [frame.get("type") for frame in during]
        states = [(frame["online"], frame["handles"]) for frame in during if frame["type"] == "presence"]
        # Our page's hello and bob's rename come within one presence tick or two: both orders are right.
        between = (5, ["ann", "bob", "dan", "watcher"])
        assert [state for state in states if state != between] == [
            (6, ["ann", "bob", "carol", "watcher"]),
            (5, ["ann", "bob", "watcher"]),
            (5, ["ann", "bobby", "dan", "watcher"]),
            (6, ["ann", "bobby", "carol", "dan", "watcher"]),
            (5, ["ann", "bobby", "dan", "watcher"]),
        ]
        # Our page types as it writes its message, too.
        assert {frame["handle"] for frame in during if frame["type"] == "typing"} == {
            "ann",
            "bob",
            "bobby",
            "carol",
            "dan",
        }
        assert kinds.count("typing") >= 6, kinds
        first, last = kinds.index("message"), len(kinds) - 1 - kinds[::-1].index("message")
        assert {"presence", "typing"} <= set(kinds[first:last]), kinds
        assert len(sockets) == 1 and not sockets[0].is_closed()  # one socket all along: it never reconnected
    finally:
        others.close()
