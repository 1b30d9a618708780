"""The baseline every benchmark figure is a ratio to: the smallest Tornado broadcast server.

A dict of rooms to handler sets; per message: ``json.loads``, add a timestamp, ``json.dumps`` once,
``write_message`` to each handler. No rate limit, no history, no bound on write buffers. It answers on
the same path as rooms (``/chat/<room>/``), so the load generator needs no switch.

With ``--sqlite PATH`` it also commits each message to SQLite (WAL, ``synchronous=FULL``) on the event
loop before broadcasting it: the naive durable server the SQL backend is compared with.

``python -m bench.baseline_server --port 8100 [--uvloop] [--sqlite PATH]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sqlite3
from datetime import UTC, datetime
from typing import Any

import tornado.web
from tornado.websocket import WebSocketClosedError, WebSocketHandler


class BroadcastHandler(WebSocketHandler):
    def initialize(self, rooms: dict[str, set[BroadcastHandler]], database: sqlite3.Connection | None) -> None:
        self.rooms = rooms
        self.database = database
        self.room = ""

    def check_origin(self, origin: str) -> bool:
        return True

    def open(self, room: str) -> None:
        self.room = room
        self.rooms.setdefault(room, set()).add(self)

    def on_message(self, message: str | bytes) -> None:
        data: dict[str, Any] = json.loads(message)
        data["timestamp"] = datetime.now(UTC).isoformat()
        if self.database is not None:
            with self.database:
                self.database.execute(
                    "INSERT INTO messages (room, body) VALUES (?, ?)", (self.room, data.get("message"))
                )
        text = json.dumps(data)
        for handler in list(self.rooms.get(self.room, ())):
            try:
                handler.write_message(text)
            except WebSocketClosedError:
                pass

    def on_close(self) -> None:
        members = self.rooms.get(self.room)
        if members is not None:
            members.discard(self)
            if not members:
                del self.rooms[self.room]


def open_database(path: str) -> sqlite3.Connection:
    database = sqlite3.connect(path)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("PRAGMA synchronous=FULL")
    database.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, room TEXT, body TEXT)")
    return database


async def serve(host: str, port: int, sqlite_path: str | None) -> None:
    database = open_database(sqlite_path) if sqlite_path else None
    rooms: dict[str, set[BroadcastHandler]] = {}
    app = tornado.web.Application([(r"/chat/([^/]+)/?", BroadcastHandler, {"rooms": rooms, "database": database})])
    server = app.listen(port, host)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    server.stop()
    if database is not None:
        database.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.baseline_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio's own loop")
    parser.add_argument("--sqlite", metavar="PATH", help="commit each message to this SQLite file first")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(serve(args.host, args.port, args.sqlite))
    else:
        asyncio.run(serve(args.host, args.port, args.sqlite))


if __name__ == "__main__":
    main()
