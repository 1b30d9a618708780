"""compose.yaml brought up as an operator would: SQLite by default; with the `redis` profile, Redis and two rooms
processes sharing its rooms. Each project is named for the test run and taken down with its volumes."""

from __future__ import annotations

import uuid

import pytest

from tests.support.api import message_texts, post_message
from tests.support.clients import connect, receive_json
from tests.support.docker import RUN_NAME, Compose, inspect
from tests.support.processes import free_port


@pytest.mark.timeout(600)
def test_compose_up_serves_a_room_on_sqlite_in_its_volume(rooms_image):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    compose = Compose(f"{RUN_NAME}-sqlite", {"ROOMS_IMAGE": rooms_image, "ROOMS_PUBLISH": f"127.0.0.1:{port}"})
    with compose.running():
        post_message(base_url, "lobby", "ann", "through compose")
        assert message_texts(base_url, "lobby") == ["through compose"]
        mounts = inspect(compose.container_of("rooms"))["Mounts"]
        assert [(mount["Type"], mount["Destination"]) for mount in mounts] == [("volume", "/var/lib/rooms")]


@pytest.mark.timeout(600)
@pytest.mark.gen_test(timeout=300)
async def test_the_redis_profile_shares_rooms_between_two_processes(rooms_image, redis_image):
    first, second = free_port(), free_port()
    compose = Compose(
        f"{RUN_NAME}-redis",
        {
            "ROOMS_IMAGE": rooms_image,
            "ROOMS_REDIS_IMAGE": redis_image,
            "ROOMS_PUBLISH_1": f"127.0.0.1:{first}",
            "ROOMS_PUBLISH_2": f"127.0.0.1:{second}",
        },
    )
    room = f"shared-{uuid.uuid4().hex[:8]}"
    with compose.running("redis", "rooms-1", "rooms-2", profiles=("redis",)):
        ws = await connect(second, room)
        stored = post_message(f"http://127.0.0.1:{first}", room, "ann", "posted to rooms-1")
        frame = await receive_json(ws, timeout=10)
        assert (frame["id"], frame["message"]) == (stored["id"], "posted to rooms-1")
        assert message_texts(f"http://127.0.0.1:{second}", room) == ["posted to rooms-1"]
        redis_command = inspect(compose.container_of("redis", profiles=("redis",)))["Config"]["Cmd"]
        assert redis_command[redis_command.index("--appendonly") + 1] == "yes"
