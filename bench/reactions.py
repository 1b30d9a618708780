"""Reactions under fan-out: the clients that react, and the figures of the reactions frames received.

With ``--features edits,reactions --react-fraction 0.1 --react-interval 0.2`` the last 10% of each room's
clients announce a handle of their own (``r<number>``) on connecting and, while the senders send, each
toggles a reaction every ``--react-interval`` seconds on the latest message it has received: 👍 on, then
off on the same message, then on on the newest one, and so on. Every one of those frames is a real change
(a handle never repeats a reaction, nor takes back one it did not make), so each gives one ``reactions``
frame to every socket of the room. ``bench.clients`` counts those frames and checks that each client's
``at`` keeps increasing.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench.clients import TEXT, Client, Run

THUMBS_UP = "\N{THUMBS UP SIGN}".encode()


class Reactor:
    """Toggles a reaction through its client every ``interval`` seconds, on an absolute schedule."""

    def __init__(self, run: Run, client: Client, offset: float, interval: float) -> None:
        self.run = run
        self.client = client
        self.offset = offset
        self.interval = interval
        self.sent = 0

    async def loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self.offset
        reacted_to: bytes | None = None  # the message this reactor's 👍 is on, to take it back next
        while self.run.sending:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            due += self.interval
            transport = self.client.transport
            if not self.run.sending or transport is None or transport.is_disconnected:
                return
            if reacted_to is None:
                reacted_to = self.client.latest_id
                if reacted_to is None:
                    continue
                on = b"true"
            else:
                on = b"false"
            frame = b'{"type":"react","id":"%s","emoji":"%s","on":%s}' % (reacted_to, THUMBS_UP, on)
            transport.send(TEXT, frame)
            if on == b"false":
                reacted_to = None
            self.sent += 1
            self.run.reactions_sent += 1


def plan_reactors(options: argparse.Namespace, rooms: list[list[Client]]) -> list[Reactor]:
    """The last ``--react-fraction`` of each room's clients, their first reactions spread over one interval."""
    per_room = round(options.clients * options.react_fraction)
    reactors: list[Reactor] = []
    for room_index, room in enumerate(rooms):
        for index in range(options.clients - per_room, options.clients):
            client = room[index]
            client.handle = client.handle or f"r{room_index * options.clients + index}"
            client.hello_on_connect = True
            client.watch_ids = True
            offset = (len(reactors) % per_room) * options.react_interval / per_room
            reactors.append(Reactor(client.run, client, offset, options.react_interval))
    return reactors


def expected_reactions(rooms: list[list[Client]], reactors: list[Reactor]) -> int:
    """Reactions frames the clients receive if none is lost: each reaction reaches every socket of its room."""
    sizes = [sum(1 for c in room if c.ready) for room in rooms]
    return sum(reactor.sent * sizes[reactor.client.room] for reactor in reactors)


def reaction_figures(run: Run, rooms: list[list[Client]], reactors: list[Reactor], seconds: float) -> dict[str, Any]:
    """``seconds``: the sending time, over which the reactors sent."""
    return {
        "reactors": len(reactors),
        "interval_s": run.options.react_interval,
        "sent": run.reactions_sent,
        "sent_per_s": round(run.reactions_sent / seconds, 1) if seconds else None,
        "frames_expected": expected_reactions(rooms, reactors),
        "frames_received": run.reactions_received,
        "at_not_increasing": run.reactions_out_of_order,
    }
