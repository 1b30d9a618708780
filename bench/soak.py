"""Months without a restart, in an hour: realistic churn on one rooms process, its RSS sampled.

``python -m bench.soak --minutes 60`` starts ``server.py`` on SQLite (rooms expiring after a minute of
quiet, a short retention) and keeps it busy: sockets join and leave, new rooms appear while old ones
expire, readers stall until the server drops them, clients reconnect with ``?since=``, and bad frames
are sent. The server's RSS is read from /proc every ``--sample-seconds``; the run passes when the last
half of it grows less than 2%. ``--json`` and ``--plot`` keep the samples and their curve.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.websocket import WebSocketClosedError, websocket_connect

from bench.procstat import rss_kib

ROOT = Path(__file__).resolve().parent.parent
MAX_GROWTH = 0.02  # of the last half of the run
CONFIG = """\
history:
  retain_per_room: 200
  expire_after_days: 0.0007   # a minute of quiet
limits:
  messages_per_second: 50
  burst: 100
  connections_per_address: 100000
  new_rooms_per_hour: 1000000
  send_buffer_bytes: 65536
"""


@dataclass
class Churn:
    """What the clients did, and what they saw go wrong."""

    connects: int = 0
    messages: int = 0
    bad_frames: int = 0
    stalled_readers: int = 0
    replays: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    def failed(self, what: str) -> None:
        self.failures[what] = self.failures.get(what, 0) + 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def current_rooms(started: float, count: int) -> list[str]:
    """Labels of this minute: every minute a new set of rooms appears and the last one falls quiet."""
    generation = int((time.monotonic() - started) // 60)
    return [f"soak-{generation}-{n}" for n in range(count)]


async def chatter(port: int, started: float, deadline: float, churn: Churn, rooms: int) -> None:
    """One client's life, again and again: join (often resuming), talk, sometimes misbehave, leave."""
    last_seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        room = random.choice(current_rooms(started, rooms))
        since = last_seen.get(room, "0") if random.random() < 0.5 else None
        url = f"ws://127.0.0.1:{port}/chat/{room}/" + (f"?since={since}" if since else "")
        try:
            ws = await websocket_connect(url)
        except (OSError, HTTPClientError) as exc:
            churn.failed(f"connect: {type(exc).__name__}")
            await asyncio.sleep(1)
            continue
        churn.connects += 1
        churn.replays += since is not None
        try:
            for n in range(random.randint(1, 8)):
                if random.random() < 0.05:
                    await ws.write_message("{not json")
                    churn.bad_frames += 1
                else:
                    await ws.write_message(json.dumps({"handle": "soak", "message": f"{room} {n} " + "x" * 200}))
                    churn.messages += 1
                await asyncio.sleep(random.uniform(0.05, 0.5))
            while (frame := await asyncio.wait_for(ws.read_message(), 0.2)) is not None:
                payload = json.loads(frame)
                if payload.get("type") == "message":
                    last_seen[room] = payload["id"]
        except TimeoutError:
            pass  # read what had come; the rest is for the next visit
        except WebSocketClosedError:
            churn.failed("closed while talking")
        finally:
            ws.close()
        await asyncio.sleep(random.uniform(0.1, 2))


async def stalled_reader(port: int, started: float, deadline: float, churn: Churn, rooms: int) -> None:
    """Clients that stop reading: the server must drop them (1013) and forget them."""
    loop = asyncio.get_running_loop()
    while time.monotonic() < deadline:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            key = base64.b64encode(os.urandom(16)).decode()
            room = random.choice(current_rooms(started, rooms))
            await loop.sock_sendall(
                sock,
                (
                    f"GET /chat/{room}/?since=0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode(),
            )
            churn.stalled_readers += 1
            await asyncio.sleep(random.uniform(5, 20))  # never reading
        except OSError as exc:
            churn.failed(f"stalled reader: {type(exc).__name__}")
        finally:
            sock.close()


async def sample(pid: int, port: int, every: float, deadline: float, samples: list[tuple[float, int]]) -> None:
    started = time.monotonic()
    client = AsyncHTTPClient()
    while True:
        samples.append((time.monotonic() - started, rss_kib(pid)))
        health = await client.fetch(f"http://127.0.0.1:{port}/healthz", raise_error=False)
        if health.code != 200:
            raise RuntimeError(f"/healthz answered {health.code} during the soak")
        if time.monotonic() + every > deadline:
            return
        await asyncio.sleep(every)


async def soak(options: argparse.Namespace) -> dict[str, object]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="rooms-soak-") as workdir:
        config = Path(workdir, "rooms.yaml")
        config.write_text(CONFIG)
        log = open(Path(workdir, "server.log"), "wb")
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "server.py"), "--config", str(config), "--port", str(port)],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await wait_healthy(port, server)
            churn = Churn()
            samples: list[tuple[float, int]] = []
            started = time.monotonic()
            deadline = started + options.minutes * 60
            clients = [chatter(port, started, deadline, churn, options.rooms) for _ in range(options.clients)]
            readers = [stalled_reader(port, started, deadline, churn, options.rooms) for _ in range(options.stalled)]
            await asyncio.gather(
                sample(server.pid, port, options.sample_seconds, deadline, samples), *clients, *readers
            )
        finally:
            server.send_signal(signal.SIGTERM)
            status = server.wait(30)
            log.close()
    half = next(rss for elapsed, rss in samples if elapsed >= samples[-1][0] / 2)
    growth = (samples[-1][1] - half) / half
    return {
        "minutes": options.minutes,
        "samples": samples,
        "rss_kib_first": samples[0][1],
        "rss_kib_half": half,
        "rss_kib_last": samples[-1][1],
        "growth_last_half": round(growth, 4),
        "levels_off": growth < MAX_GROWTH,
        "exit_status": status,
        "churn": churn.__dict__,
    }


async def wait_healthy(port: int, server: subprocess.Popen[bytes]) -> None:
    client = AsyncHTTPClient()
    for _ in range(400):
        if server.poll() is not None:
            raise RuntimeError(f"server.py exited with {server.returncode}")
        try:
            await client.fetch(f"http://127.0.0.1:{port}/healthz")
            return
        except (OSError, HTTPClientError):
            await asyncio.sleep(0.05)
    raise RuntimeError("server.py did not answer /healthz")


def plot(result: dict[str, object], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    assert isinstance(samples, list)
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.plot([elapsed / 60 for elapsed, _ in samples], [rss / 1024 for _, rss in samples], marker=".")
    axes.set_xlabel("minutes")
    axes.set_ylabel("server RSS (MiB)")
    axes.set_ylim(bottom=0)
    axes.set_title(f"rooms under churn: last half grew {float(str(result['growth_last_half'])) * 100:.2f}%")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--sample-seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=40, help="chatting clients, each joining and leaving")
    parser.add_argument("--stalled", type=int, default=4, help="clients that stop reading, one after another")
    parser.add_argument("--rooms", type=int, default=20, help="rooms of each minute")
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--plot", help="write the RSS curve here (PNG)")
    options = parser.parse_args(argv)
    result = asyncio.run(soak(options))
    if options.json:
        Path(options.json).write_text(json.dumps(result, indent=2))
    if options.plot:
        plot(result, options.plot)
    summary = {key: value for key, value in result.items() if key != "samples"}
    print(json.dumps(summary))
    return 0 if result["levels_off"] and result["exit_status"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
