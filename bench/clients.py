"""The load generator's clients: each checks every frame it receives; senders send through one of them.

Every message text is ``bench:<kind>:<sender>:<seq>:<sent_ns>``: ``m`` for measured messages, ``w``
for warm-up ones, the sender's number and sequence number, and ``time.monotonic_ns()`` at sending.
Clients find the text with a byte search instead of a JSON parse (the load generator has to keep up
with the server), which works for any server that echoes the message field as JSON text.

With ``--features presence,typing`` a client also reads and counts the presence and typing frames it is
sent (by their first bytes, as rooms encodes them: compact JSON, ``type`` first), so that they cost the
load generator little and no client falls behind by accident; ``Typist`` sends ``{"type":"typing"}``.
With ``--features edits,reactions`` it counts the reactions frames and checks that their ``at`` increases
(rooms' stores number positions with integers); the clients that react are ``bench.reactions``'.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from array import array
from collections import Counter
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from bench.dial import Dialer

T = TypeVar("T")

TEXT = WSMsgType.TEXT
CLOSE = WSMsgType.CLOSE
MARK = b"bench:"
PRESENCE_PREFIX = b'{"type":"presence"'
TYPING_PREFIX = b'{"type":"typing"'
TYPING_FRAME = b'{"type":"typing"}'
REACTIONS_PREFIX = b'{"type":"reactions"'
AT_FIELD = b'"at":"'
ID_FIELD = b'"id":"'
monotonic_ns = time.monotonic_ns


class Run:
    """Counters shared by every client of one run."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.latencies_ns = array("q")
        self.received = 0
        self.duplicated = 0
        self.out_of_order = 0
        self.ready = 0
        self.last_delivery_ns = 0
        self.sending = False
        self.measuring = False
        self.errors: Counter[str] = Counter()
        self.close_codes: Counter[int] = Counter()
        self.dropped_while_measuring = 0
        self.gaps = 0
        self.other_frames = 0
        # Presence and typing frames received while measuring, and typing frames sent.
        self.presence_frames = 0
        self.typing_frames = 0
        self.typing_sent = 0
        # Reactions sent, reactions frames received while measuring, and those whose at did not increase.
        self.reactions_sent = 0
        self.reactions_received = 0
        self.reactions_out_of_order = 0


class Client(WSListener):
    """One WebSocket client; checks that every sender's messages arrive once each, in order."""

    def __init__(self, run: Run, room: int) -> None:
        super().__init__()
        self.run = run
        self.room = room
        self.transport: WSTransport | None = None
        self.ready = False
        self.sender: Sender | None = None
        self.handle: str | None = None  # announced with hello
        self.hello_on_connect = False
        self.watch_ids = False  # keep latest_id: the id of the last measured message received (a reactor)
        self.latest_id: bytes | None = None
        self.last_at = 0
        # Per sender: the next sequence number expected, and numbers skipped that may still come late.
        self.next_seq: dict[int, int] = {}
        self.holes: dict[int, set[int]] = {}

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if self.hello_on_connect:
            self.hello()

    def hello(self) -> None:
        transport = self.transport
        if self.handle is not None and transport is not None and not transport.is_disconnected:
            transport.send(TEXT, b'{"type":"hello","handle":"%s"}' % self.handle.encode())

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.run.measuring:
            self.run.dropped_while_measuring += 1

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != TEXT:
            if frame.msg_type == CLOSE:
                code = frame.get_close_code()
                self.run.close_codes[int(getattr(code, "value", code))] += 1
                transport.send_close(WSCloseCode.OK)
                transport.disconnect()
            return
        data = frame.get_payload_as_bytes()
        start = data.find(MARK)
        if start < 0:
            if data.startswith(TYPING_PREFIX):
                if self.run.measuring:
                    self.run.typing_frames += 1
            elif data.startswith(PRESENCE_PREFIX):
                if self.run.measuring:
                    self.run.presence_frames += 1
            elif data.startswith(REACTIONS_PREFIX):
                self._reactions(data)
            else:
                self._other(data)
            return
        kind, sender, seq, sent_ns = data[start + 6 : data.find(b'"', start)].split(b":")
        if kind != b"m":
            if not self.ready:
                self.ready = True
                self.run.ready += 1
            return
        now = monotonic_ns()
        number = int(sender)
        number_seq = int(seq)
        run = self.run
        expected = self.next_seq.get(number, 0)
        if number_seq == expected:
            self.next_seq[number] = expected + 1
        elif not self._unexpected(number, number_seq, expected):
            return
        run.received += 1
        run.latencies_ns.append(now - int(sent_ns))
        run.last_delivery_ns = now
        if self.sender is not None and number == self.sender.number:
            self.sender.on_echo()
        if self.watch_ids:
            id_start = data.find(ID_FIELD) + len(ID_FIELD)
            self.latest_id = data[id_start : data.find(b'"', id_start)]

    def _unexpected(self, sender: int, seq: int, expected: int) -> bool:
        """Account for a sequence number other than the next one; True if it is a first arrival."""
        holes = self.holes.setdefault(sender, set())
        if seq > expected:
            holes.update(range(expected, seq))
            self.next_seq[sender] = seq + 1
            return True
        if seq in holes:
            holes.discard(seq)
            self.run.out_of_order += 1
            return True
        self.run.duplicated += 1
        return False

    def _reactions(self, data: bytes) -> None:
        start = data.find(AT_FIELD) + len(AT_FIELD)
        at = int(data[start : data.find(b'"', start)])
        if at <= self.last_at:
            self.run.reactions_out_of_order += 1
        self.last_at = max(at, self.last_at)
        if self.run.measuring:
            self.run.reactions_received += 1

    def _other(self, data: bytes) -> None:
        try:
            payload = json.loads(data)
        except ValueError:
            payload = {}
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind == "error":
            self.run.errors[str(payload.get("code"))] += 1
            if self.sender is not None:
                self.sender.on_rejected()
        elif kind == "gap":
            self.run.gaps += 1
        else:
            self.run.other_frames += 1


class Sender:
    """Sends measured messages through its client: ``window`` in flight, or at a fixed rate."""

    def __init__(self, run: Run, client: Client, number: int) -> None:
        self.run = run
        self.client = client
        self.number = number
        self.seq = 0
        self.in_flight = 0
        self.rejected = 0
        self.window: int = run.options.window
        self.limit: int | None = run.options.messages
        self.paced = run.options.rate is not None

    @property
    def accepted(self) -> int:
        return self.seq - self.rejected

    def done(self) -> bool:
        return self.limit is not None and self.seq >= self.limit

    def send_one(self) -> None:
        transport = self.client.transport
        if transport is None or transport.is_disconnected or self.done():
            return
        text = b'{"handle":"s%d","message":"bench:m:%d:%d:%d"}' % (self.number, self.number, self.seq, monotonic_ns())
        transport.send(TEXT, text)
        self.seq += 1
        self.in_flight += 1

    def fill_window(self) -> None:
        while self.run.sending and self.in_flight < self.window and not self.done():
            before = self.seq
            self.send_one()
            if self.seq == before:
                return

    def on_echo(self) -> None:
        self.in_flight -= 1
        if not self.paced:
            self.fill_window()

    def on_rejected(self) -> None:
        self.rejected += 1
        self.on_echo()

    async def paced_loop(self, rate: float) -> None:
        """Send at ``rate`` per second on an absolute schedule (a late tick does not shift later ones)."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / rate
        due = loop.time() + random.random() * interval
        while self.run.sending and not self.done():
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self.run.sending:
                return
            self.send_one()
            due += interval


class Typist:
    """Sends ``{"type":"typing"}`` through its client every ``interval`` seconds while the run sends.

    The interval is counted from the previous frame sent, never shorter (rooms drops a socket's typing
    frames that come closer together than 2 s); ``offset`` spreads the typists' first frames out.
    """

    def __init__(self, run: Run, client: Client, offset: float, interval: float) -> None:
        self.run = run
        self.client = client
        self.offset = offset
        self.interval = interval
        self.sent = 0

    async def loop(self) -> None:
        await asyncio.sleep(self.offset)
        while self.run.sending:
            transport = self.client.transport
            if transport is None or transport.is_disconnected:
                return
            transport.send(TEXT, TYPING_FRAME)
            self.sent += 1
            self.run.typing_sent += 1
            await asyncio.sleep(self.interval)


async def connect_spread(
    clients: Sequence[Client], urls: Sequence[str], first: int, options: argparse.Namespace, failures: Counter[str]
) -> None:
    """Connects each of ``clients`` to its URL of ``urls``, client ``i`` from the loopback source of index ``first + i``
    (``options.sources`` of them), at most ``options.connect_concurrency`` handshakes at a time; a client that
    fails is counted in ``failures`` by its error."""
    gate = asyncio.Semaphore(options.connect_concurrency)
    dialers: dict[str, Dialer] = {}  # one per server

    async def connect(client: Client, url: str, index: int) -> None:
        server = urlsplit(url).netloc
        dialer = dialers.get(server) or dialers.setdefault(
            server, Dialer(url, options.sources, options.handshake_timeout)
        )
        async with gate:
            try:
                await dialer.connect(client, url, index)
            except Exception as exc:
                failures[f"{type(exc).__name__}: {exc}"[:200]] += 1

    await asyncio.gather(
        *(connect(client, url, first + i) for i, (client, url) in enumerate(zip(clients, urls, strict=True)))
    )


def run_on_fastest_loop(main: Coroutine[Any, Any, T]) -> T:
    """Runs ``main`` on uvloop where it is installed (the load's own loop costs less CPU), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
