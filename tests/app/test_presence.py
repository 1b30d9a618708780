"""Presence and typing over real sockets (docs/protocol.md, "Frames from the server"): only for the sockets
that ask, coalesced, bounded, and nothing more for a socket that asked for nothing."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from rooms.room import presence as presence_module
from rooms.room.session import TYPING_INTERVAL
from tests.support.apps import app_config
from tests.support.clients import assert_next_is_marker, connect, raw_handshake, receive_json, send_json
from tests.support.redis import Peer
from tests.support.waiting import eventually

ALL = "presence,typing,deletes"


@pytest.fixture
def config():
    # Pings every half second: a peer that stops answering is dropped within a second.
    return app_config(
        server={"ping_interval": 0.5},
        limits={"messages_per_second": 1000, "burst": 1000, "connections_per_address": 500},
    )


def presence(peer: Peer) -> list[dict[str, Any]]:
    return [frame for frame in peer.frames if frame.get("type") == "presence"]


def last_presence(peer: Peer) -> tuple[int, list[str]] | None:
    frames = presence(peer)
    return (frames[-1]["online"], frames[-1]["handles"]) if frames else None


def typing(peer: Peer) -> list[str]:
    return [frame["handle"] for frame in peer.frames if frame.get("type") == "typing"]


@pytest.mark.gen_test
async def test_a_socket_that_asks_for_nothing_gets_only_messages_while_others_come_go_and_type(http_server, http_port):
    seed = await connect(http_port, "lobby")  # the 2016 client's URL
    watcher = await Peer.join(http_port, "lobby", "watcher", since=None, features=ALL)
    await send_json(watcher.ws, {"type": "hello", "handle": "watcher"})
    others = [await Peer.join(http_port, "lobby", f"p{n}", since=None, features=ALL) for n in range(3)]
    for other in others:
        await send_json(other.ws, {"type": "hello", "handle": other.name})
        await send_json(other.ws, {"type": "typing"})
    await others[0].close()
    await eventually(lambda: last_presence(watcher) == (4, ["p1", "p2", "watcher"]))
    await eventually(lambda: sorted(typing(watcher)) == ["p0", "p1", "p2"])
    # Everything above was due to the seed client before this marker, had it been sent to it.
    await assert_next_is_marker(seed)
    await watcher.close()


@pytest.mark.gen_test
async def test_presence_comes_on_joining_and_follows_hellos_joins_and_leaves(http_server, http_port):
    ann = await Peer.join(http_port, "lobby", "ann", since=None, features="presence")
    await eventually(lambda: last_presence(ann) == (1, []))
    await send_json(ann.ws, {"type": "hello", "handle": "ann"})
    await eventually(lambda: last_presence(ann) == (1, ["ann"]))
    bob = await Peer.join(http_port, "lobby", "bob", since=None, features="presence")
    await eventually(lambda: last_presence(bob) == (2, ["ann"]))  # on joining, before it says a word
    await send_json(bob.ws, {"type": "hello", "handle": "bob"})
    await eventually(lambda: last_presence(ann) == (2, ["ann", "bob"]))
    await send_json(bob.ws, {"type": "hello", "handle": "Bobby"})  # a new name replaces the old
    await eventually(lambda: last_presence(ann) == (2, ["Bobby", "ann"]))
    silent = await connect(http_port, "lobby")  # counted, though it asked for nothing and said nothing
    await eventually(lambda: last_presence(ann) == (3, ["Bobby", "ann"]))
    silent.close()
    await bob.close()
    await eventually(lambda: last_presence(ann) == (1, ["ann"]))
    # Only changes are sent: nothing repeats the same presence twice in a row.
    frames = [(frame["online"], frame["handles"]) for frame in presence(ann)]
    assert all(earlier != later for earlier, later in itertools.pairwise(frames))
    await ann.close()


@pytest.mark.gen_test
async def test_handles_are_distinct_sorted_and_at_most_a_hundred(http_server, http_port):
    watcher = await Peer.join(http_port, "lobby", "watcher", since=None, features="presence")
    sockets = [await connect(http_port, "lobby") for _ in range(105)]
    for number, ws in enumerate(sockets):
        await send_json(ws, {"type": "hello", "handle": f"h{number:03d}"})
    twin = await connect(http_port, "lobby")
    await send_json(twin, {"type": "hello", "handle": "h000"})  # a handle used twice is listed once
    expected = (107, [f"h{number:03d}" for number in range(100)])
    await eventually(lambda: last_presence(watcher) == expected)
    for ws in (*sockets, twin):
        ws.close()
    await watcher.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_crowd_coming_and_going_costs_at_most_two_presence_frames_a_second(http_server, http_port):
    watcher = await Peer.join(http_port, "lobby", "watcher", since=None, features="presence")
    await eventually(lambda: presence(watcher))
    loop = asyncio.get_running_loop()
    start, before = loop.time(), len(presence(watcher))
    crowd: list[Any] = []
    while loop.time() - start < 2.0:
        crowd.append(await connect(http_port, "lobby", features="presence"))
        if len(crowd) > 20:
            crowd.pop(0).close()
        await asyncio.sleep(0.01)
    elapsed = loop.time() - start
    sent = len(presence(watcher)) - before
    assert 1 <= sent <= 2 * elapsed + 2, f"{sent} presence frames in {elapsed:.1f}s"
    await eventually(lambda: last_presence(watcher) == (1 + len(crowd), []))
    for ws in crowd:
        ws.close()
    await watcher.close()


@pytest.mark.gen_test
async def test_typing_reaches_the_others_that_asked_never_the_typist_and_at_most_once_per_interval(
    http_server, http_port
):
    ann = await Peer.join(http_port, "lobby", "ann", since=None, features="typing")
    bob = await Peer.join(http_port, "lobby", "bob", since=None, features="typing,presence")
    cat = await Peer.join(http_port, "lobby", "cat", since=None, features="presence")
    await send_json(ann.ws, {"type": "hello", "handle": "ann"})
    await send_json(ann.ws, {"type": "typing"})
    for _ in range(5):  # within the interval: dropped without a word
        await send_json(ann.ws, {"type": "typing"})
    await send_json(bob.ws, {"type": "typing", "handle": "bob"})  # named in the frame, no hello needed
    await eventually(lambda: typing(bob) == ["ann"] and typing(ann) == ["bob"])
    # A message ann sends now is the marker: her frames are handled in order and a typing frame goes out
    # before its typist's message, so whatever of her typing was relayed, or said back to her, came before.
    await send_json(ann.ws, {"handle": "ann", "message": "marker"})
    for peer in (ann, bob, cat):
        await peer.wait_until(lambda seen: any(frame["message"] == "marker" for frame in seen.messages()))
    assert typing(bob) == ["ann"] and typing(ann) == ["bob"] and typing(cat) == []
    assert not [frame for frame in ann.frames if frame.get("type") == "error"]
    await asyncio.sleep(TYPING_INTERVAL)
    await send_json(ann.ws, {"type": "typing"})
    await eventually(lambda: typing(bob) == ["ann", "ann"])
    for peer in (ann, bob, cat):
        await peer.close()


@pytest.mark.gen_test
async def test_typing_without_a_handle_and_a_bad_hello_are_invalid_and_the_socket_stays(http_server, http_port):
    ws = await connect(http_port, "lobby", features=ALL)
    await send_json(ws, {"type": "typing"})
    error = await receive_json(ws)
    assert error["type"] == "error" and error["code"] == "invalid_message" and "hello" in error["error"]
    await send_json(ws, {"type": "hello", "handle": "a\u202eb"})
    while (frame := await receive_json(ws))["type"] == "presence":
        pass
    assert frame["code"] == "invalid_message" and "handle" in frame["error"]
    await assert_next_is_marker(ws)


@pytest.mark.gen_test
async def test_a_room_whose_sockets_all_left_keeps_no_presence(http_server, http_port, app):
    peers = [await Peer.join(http_port, f"room-{n}", "p", since=None, features=ALL) for n in range(5)]
    for peer in peers:
        await send_json(peer.ws, {"type": "hello", "handle": "p"})
        await send_json(peer.ws, {"type": "typing"})
    await eventually(lambda: all(presence(peer) for peer in peers))
    for peer in peers:
        await peer.close()
    # Kept until the tick after its last socket left, which ends with the room forgotten.
    await eventually(lambda: not any(app.hub.presence.has_room(f"room-{n}") for n in range(5)))


@pytest.mark.gen_test
async def test_presence_frames_are_coalesced_per_room_not_per_socket(http_server, http_port, monkeypatch):
    monkeypatch.setattr(presence_module, "PRESENCE_INTERVAL", 1.0)
    watchers = [await Peer.join(http_port, "lobby", f"w{n}", since=None, features="presence") for n in range(3)]
    await eventually(lambda: all(last_presence(watcher) == (3, []) for watcher in watchers))
    for watcher in watchers:
        await send_json(watcher.ws, {"type": "hello", "handle": watcher.name})
    await eventually(lambda: all(last_presence(w) == (3, ["w0", "w1", "w2"]) for w in watchers))
    # Three hellos within one interval make one frame, not three.
    assert all(json.dumps(presence(w)[-2]) != json.dumps(presence(w)[-1]) for w in watchers)
    assert all(len(presence(w)) <= 3 for w in watchers)
    for watcher in watchers:
        await watcher.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_dead_peer_leaves_presence_within_the_ping_timeout(http_server, http_port):
    watcher = await Peer.join(http_port, "lobby", "watcher", since=None, features="presence")
    silent = await raw_handshake(http_port, "/chat/lobby/")  # never reads, so never answers a ping
    try:
        await eventually(lambda: last_presence(watcher) == (2, []))
        await eventually(lambda: last_presence(watcher) == (1, []), timeout=5)
    finally:
        silent.close()
        await watcher.close()


@pytest.mark.gen_test
async def test_presence_frames_and_typing_are_counted_on_metrics(http_server, http_port, http_client):
    ann = await Peer.join(http_port, "lobby", "ann", since=None, features=ALL)
    bob = await Peer.join(http_port, "lobby", "bob", since=None, features=ALL)
    await send_json(ann.ws, {"type": "typing", "handle": "ann"})
    await eventually(lambda: typing(bob) == ["ann"] and last_presence(ann) == (2, []))
    metrics = (await http_client.fetch(f"http://127.0.0.1:{http_port}/metrics")).body.decode()
    counted = dict(line.split(" ") for line in metrics.splitlines() if line.startswith("rooms_"))
    assert float(counted["rooms_typing_relayed_total"]) == 1
    assert float(counted["rooms_presence_frames_total"]) >= 2  # at least the one that reached each
    for peer in (ann, bob):
        await peer.close()


def shown(peer: Peer) -> list[tuple[int, list[str]]]:
    return [(frame["online"], frame["handles"]) for frame in presence(peer)]


async def said(peer: Peer, text: str) -> None:
    await peer.wait_until(lambda seen: any(frame["message"] == text for frame in seen.messages()))


@pytest.mark.gen_test
async def test_in_a_room_past_its_writes_a_change_waits_for_everyone_and_a_newcomer_gets_it_at_once(
    http_server, http_port, monkeypatch
):
    # At 0.05 writes a second, a frame to two listening sockets waits 40 s after the last one.
    monkeypatch.setattr(presence_module, "PRESENCE_WRITES_PER_SECOND", 0.05)
    ann = await Peer.join(http_port, "lobby", "ann", since=None, features="presence")
    await eventually(lambda: shown(ann) == [(1, [])])  # a room's first frame goes out at once
    bob = await Peer.join(http_port, "lobby", "bob", since=None, features="presence")
    await eventually(lambda: shown(bob) == [(2, [])])  # at its first tick, itself counted
    # The same tick held the change back from ann: a message sent after it reaches her with no presence before.
    await send_json(bob.ws, {"handle": "bob", "message": "after bob's presence"})
    await said(ann, "after bob's presence")
    assert shown(ann) == [(1, [])]
    # Once the interval allows, the held change reaches ann, and bob, who has it, is not sent it again.
    monkeypatch.setattr(presence_module, "PRESENCE_WRITES_PER_SECOND", 4000)
    await eventually(lambda: shown(ann) == [(1, []), (2, [])])
    await send_json(ann.ws, {"handle": "ann", "message": "after ann's presence"})
    await said(bob, "after ann's presence")
    assert shown(bob) == [(2, [])]
    for peer in (ann, bob):
        await peer.close()


@pytest.mark.gen_test
async def test_a_newcomer_sent_a_change_held_back_gets_the_rooms_frame_again_when_the_change_is_undone(
    http_server, http_port, monkeypatch
):
    monkeypatch.setattr(presence_module, "PRESENCE_WRITES_PER_SECOND", 0.05)
    silent = await connect(http_port, "lobby")
    ann = await Peer.join(http_port, "lobby", "ann", since=None, features="presence")
    await eventually(lambda: shown(ann) == [(2, [])])
    bob = await Peer.join(http_port, "lobby", "bob", since=None, features="presence")
    await eventually(lambda: shown(bob) == [(3, [])])
    silent.close()
    await eventually(lambda: shown(bob) == [(3, []), (2, [])])  # what ann has shown all along
    await send_json(bob.ws, {"handle": "bob", "message": "after the count went back"})
    await said(ann, "after the count went back")
    assert shown(ann) == [(2, [])]
    for peer in (ann, bob):
        await peer.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_crowd_coming_and_going_in_a_big_room_costs_at_most_its_writes_and_ends_exact(
    http_server, http_port, monkeypatch
):
    # 20 listening sockets at 10 writes a second: a frame to all of them at most every 2 s.
    monkeypatch.setattr(presence_module, "PRESENCE_WRITES_PER_SECOND", 10)
    watcher = await Peer.join(http_port, "lobby", "watcher", since=None, features="presence")
    crowd = [await connect(http_port, "lobby", features="presence") for _ in range(19)]
    await eventually(lambda: presence(watcher))
    loop = asyncio.get_running_loop()
    start, before = loop.time(), len(presence(watcher))
    while loop.time() - start < 3.0:
        crowd.append(await connect(http_port, "lobby", features="presence"))
        crowd.pop(0).close()
        await asyncio.sleep(0.01)
    elapsed = loop.time() - start
    sent = len(presence(watcher)) - before
    assert sent <= elapsed / presence_module.broadcast_interval(20) + 1, f"{sent} presence frames in {elapsed:.1f}s"
    await eventually(lambda: last_presence(watcher) == (20, []))  # exact once the room is quiet
    for ws in crowd:
        ws.close()
    await watcher.close()
