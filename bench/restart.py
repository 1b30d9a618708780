"""A restart under a big room: 19,000 pages on SQLite, the server restarted, everyone back and caught up.

``python -m bench.restart --pages 19000`` starts rooms on SQLite (the ``rooms-sqlite`` server of
``bench.servers``) and opens the pages' sockets in one room as the room page does
(``?features=presence,typing,deletes,edits,reactions``, or ``--features``), from the spread loopback addresses
(``bench.sources``). One more socket sends ``--messages`` messages, which every page receives, keeping the
id of the last. Then the server gets SIGTERM and closes every socket with 1001, and a new process starts
on the same port and the same SQLite file. Each page comes back as the room page does
(``static/room/connection.js``): after a 1001 close, every 0.5-1 s while refused for 20 s (the restart's
window, ``--restart-window``), then 1-2 s, 2-4 s and so on (exponential backoff from 1 s with jitter, at
most 30 s; a handshake given up after 10 s), with ``?since=`` the last id it saw. The sender comes back the
same way and, once back, sends ``--messages`` more. A page is caught up when it has received those, once
each and in order, and none of the first ones again.

Prints one JSON object: seconds from the new process listening to the last page back and to the last
page caught up (the target: within 10 s), how long the old process took to stop, the new one's CPU and
this process's (all the pages) over the catch-up, and the pages' failed tries.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from picows import WSCloseCode, WSFrame, WSMsgType, WSTransport

from bench.bigroom import Room
from bench.clients import Client, Run, Sender, run_on_fastest_loop
from bench.dial import Dialer
from bench.procstat import cpu_seconds, raise_open_file_limit, rss_kib
from bench.servers import SERVERS, Started, stop
from bench.sources import SPREAD

# As static/room/connection.js.
PAGE_FEATURES = "presence,typing,deletes,edits,reactions"
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_GROWTH = 2.0
BACKOFF_MAX_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 10.0
RESTART_WINDOW_SECONDS = 20.0
CAUGHT_UP_WITHIN_SECONDS = 10.0


class Comeback:
    """Brings dropped pages back with the page's backoff and ``?since=``; counts the tries that failed."""

    def __init__(self, options: argparse.Namespace, url: str) -> None:
        self.options = options
        self.url = url
        self.dialer = Dialer(url, options.sources, CONNECT_TIMEOUT_SECONDS)
        self.active = False
        self.caught_up_at_seq = 0  # a page is caught up once it has every message before this sequence number
        self.gate = asyncio.Semaphore(options.connect_concurrency)
        self.failures: Counter[str] = Counter()
        self.tasks: set[asyncio.Future[None]] = set()

    def schedule(self, page: Page) -> None:
        restarting = time.monotonic() < page.restart_window_ends
        steps = 0 if restarting else page.backoff_steps
        ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * self.options.backoff_growth**steps)
        if not restarting:
            page.backoff_steps += 1
        asyncio.get_running_loop().call_later(ceiling / 2 + random.random() * ceiling / 2, self._start, page)

    def _start(self, page: Page) -> None:
        task = asyncio.ensure_future(self._connect(page))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect(self, page: Page) -> None:
        query = [f"features={self.options.features}"] if self.options.features else []
        query += [f"since={page.latest_id.decode()}"] if page.latest_id else []
        url = f"{self.url}?{'&'.join(query)}" if query else self.url
        async with self.gate:
            try:
                await self.dialer.connect(page, url, page.index)
                return
            except Exception as exc:
                self.failures[type(exc).__name__] += 1
        self.schedule(page)


class Page(Client):
    """A room page's socket: keeps the last id it saw and comes back after a drop."""

    def __init__(self, run: Run, comeback: Comeback, index: int) -> None:
        super().__init__(run, 0)
        self.watch_ids = True
        self.comeback = comeback
        self.index = index
        self.backoff_steps = 0
        self.restart_window_ends = 0.0  # 0: no restart's window since the last healthy connection
        self.going_away = False  # the last close frame was 1001
        self.opened_at = 0.0
        self.back_at = 0.0
        self.caught_up_at = 0.0

    def on_ws_connected(self, transport: WSTransport) -> None:
        super().on_ws_connected(transport)
        self.opened_at = time.monotonic()
        if self.comeback.active:
            self.back_at = self.opened_at

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            self.going_away = frame.get_close_code() == WSCloseCode.GOING_AWAY
        super().on_ws_frame(transport, frame)
        target = self.comeback.caught_up_at_seq
        if target and not self.caught_up_at and self.next_seq.get(0, 0) >= target:
            self.caught_up_at = time.monotonic()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        super().on_ws_disconnected(transport)
        if not self.comeback.active:
            return
        now = time.monotonic()
        if self.opened_at and now - self.opened_at > HEALTHY_AFTER_SECONDS:
            self.backoff_steps = 0
            self.restart_window_ends = 0.0
        if self.going_away and not self.restart_window_ends:
            self.restart_window_ends = now + self.comeback.options.restart_window
        self.going_away = False
        self.opened_at = 0.0
        self.comeback.schedule(page=self)


def seconds_after(moments: list[float], origin: float) -> dict[str, float | None]:
    """The median, 99th percentile and last of ``moments`` (0: never), in seconds after ``origin``."""
    done = sorted(moment - origin for moment in moments if moment)
    if not done:
        return {"p50": None, "p99": None, "last": None}
    return {
        "p50": round(done[len(done) // 2], 3),
        "p99": round(done[min(len(done) - 1, int(0.99 * len(done)))], 3),
        "last": round(done[-1], 3),
    }


async def restart_under_load(options: argparse.Namespace, started: list[Started], workdir: Path) -> dict[str, Any]:
    spec = SERVERS[options.server]
    port = started[0].ports[0]
    options.url = started[0].urls[0]
    comeback = Comeback(options, f"{started[0].urls[0]}/chat/{options.room}/")
    indexes = iter(range(options.pages + 1))
    room = Room(options, make_client=lambda run: Page(run, comeback, next(indexes)))
    began = time.monotonic()
    await room.join(options.pages + 1)
    join_seconds = time.monotonic() - began
    pages: list[Page] = room.clients[1:]  # type: ignore[assignment]
    sender_page: Page = room.clients[0]  # type: ignore[assignment]
    sender = Sender(room.run, sender_page, 0)
    sender_page.sender = sender
    before = await room.reach_all(sender, options.messages)
    # The pages' objects live to the end, and so do the connections they make through the restart: the cycle
    # collector's full collections, walking them all every few thousand tries, had cost this process
    # seconds of a core. The first ones are frozen out of its generations and it is off until all are caught
    # up (the few cycles that failed tries leave meanwhile wait until then).
    gc.freeze()
    gc.disable()

    rss_before = rss_kib(started[0].pids[0])
    comeback.active = True
    stopping = time.monotonic()
    await asyncio.to_thread(stop, started.pop())
    stop_seconds = time.monotonic() - stopping
    # Not settled: the pages are coming back as it listens.
    started.append(await asyncio.to_thread(spec.start, workdir, fixed_ports=[port], settle=False))
    listening = time.monotonic()
    pid = started[0].pids[0]
    cpu_listening = cpu_seconds(pid)
    client_cpu_listening = cpu_seconds(os.getpid())
    comeback.caught_up_at_seq = 2 * options.messages
    deadline = listening + options.step_timeout
    while not (sender_page.back_at and sender_page.opened_at) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    room.run.sending = True
    sender.limit = 2 * options.messages
    sender.fill_window()
    while time.monotonic() < deadline and not all(page.caught_up_at for page in pages):
        await asyncio.sleep(0.02)
    cpu_caught_up = cpu_seconds(pid)
    client_cpu_caught_up = cpu_seconds(os.getpid())
    gc.enable()
    back = seconds_after([page.back_at for page in pages], listening)
    caught_up = seconds_after([page.caught_up_at for page in pages], listening)
    return {
        "pages": options.pages,
        "features": options.features,
        "backoff_growth": options.backoff_growth,
        "restart_window": options.restart_window,
        "messages": options.messages,
        "joined": room.run.ready - 1,
        "join_seconds": round(join_seconds, 3),
        "before_restart": before,
        "server_rss_kib_before": rss_before,
        "stop_seconds": round(stop_seconds, 3),
        "close_codes": {str(code): count for code, count in room.run.close_codes.items()},
        "back": sum(1 for page in pages if page.back_at),
        "caught_up": sum(1 for page in pages if page.caught_up_at),
        "back_seconds": back,
        "caught_up_seconds": caught_up,
        "caught_up_within_target": caught_up["last"] is not None
        and caught_up["last"] <= CAUGHT_UP_WITHIN_SECONDS
        and all(page.caught_up_at for page in pages),
        "duplicated": room.run.duplicated,
        "out_of_order": room.run.out_of_order,
        "gaps": room.run.gaps,
        "failed_tries": dict(comeback.failures),
        "server_cpu_s_listening_to_caught_up": round(cpu_caught_up - cpu_listening, 3),
        # The pages are this one process: on a machine of two cores it and the server share them.
        "client_cpu_s_listening_to_caught_up": round(client_cpu_caught_up - client_cpu_listening, 3),
        "server_rss_kib_after": rss_kib(pid),
    }


async def run(options: argparse.Namespace) -> dict[str, Any]:
    spec = SERVERS[options.server]
    with tempfile.TemporaryDirectory(prefix="rooms-restart-") as tmp:
        started = [spec.start(Path(tmp))]
        try:
            return await restart_under_load(options, started, Path(tmp))
        finally:
            for server in started:
                stop(server)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.restart", description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=19_000)
    parser.add_argument("--messages", type=int, default=5, help="sent before the restart, and again after it")
    parser.add_argument("--server", default="rooms-sqlite", choices=sorted(SERVERS))
    parser.add_argument("--features", default=PAGE_FEATURES, help="?features= on every socket URL (the page's)")
    parser.add_argument(
        "--backoff-growth", type=float, default=BACKOFF_GROWTH, help="each wait's ceiling over the last (the page's)"
    )
    parser.add_argument(
        "--restart-window",
        type=float,
        default=RESTART_WINDOW_SECONDS,
        help="seconds after a 1001 close with every wait the first one's (the page's; 0: backoff at once)",
    )
    parser.add_argument("--connect-concurrency", type=int, default=500)
    parser.add_argument("--sources", type=int, default=SPREAD, help="loopback source addresses (bench.sources)")
    parser.add_argument("--handshake-timeout", type=float, default=60, help="for the first joins")
    parser.add_argument("--step-timeout", type=float, default=120, help="longest wait for a step")
    parser.add_argument("--drain-idle", type=float, default=20, help="stop waiting after this long with no delivery")
    parser.add_argument("--json", type=Path, help="also write the result here")
    options = parser.parse_args(argv)
    options.room = f"restart{random.randrange(16**8):08x}"
    options.burst = options.messages  # the sender's window: each batch goes at once
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    raise_open_file_limit(options.pages + 1024)
    result = run_on_fastest_loop(run(options))
    text = json.dumps(result)
    if options.json:
        options.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
