"""The Dockerfile's image, run as an operator runs it: healthy by its own HEALTHCHECK, a room served through a
published port, its data in a volume that outlives the container, and `docker stop` a clean shutdown."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.support.api import message_texts, post_message, wait_answering
from tests.support.clients import connect, receive_json, wait_closed
from tests.support.docker import RUN_NAME, container, docker, inspect, is_running, logs, volume, wait_healthy
from tests.support.processes import free_port

SECRETS = ("ROOMS_JWT_SECRET", "ROOMS_INVITE_SECRET", "ROOMS_MODERATOR_TOKEN")


def test_the_image_runs_rooms_as_a_user_with_its_data_in_a_volume_and_no_secret(rooms_image):
    config = inspect(rooms_image)["Config"]
    assert config["User"] == "10001:10001"
    assert "/var/lib/rooms" in config["Volumes"]
    assert config["Cmd"] == ["rooms"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "python3"]
    variables = dict(item.split("=", 1) for item in config["Env"])
    assert variables["ROOMS_BACKEND_URL"] == "sqlite:////var/lib/rooms/rooms.db"
    assert (variables["ROOMS_HOST"], variables["ROOMS_PORT"]) == ("0.0.0.0", "8000")
    assert not [name for name in variables if name.startswith(SECRETS)]


@pytest.mark.timeout(900)
@pytest.mark.gen_test(timeout=300)
async def test_the_image_turns_healthy_serves_a_room_and_stops_cleanly_keeping_its_data(rooms_image):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    room = f"image-{uuid.uuid4().hex[:8]}"
    with volume(f"{RUN_NAME}-data") as data:
        run = ("--publish", f"127.0.0.1:{port}:8000", "--volume", f"{data}:/var/lib/rooms", rooms_image)
        with container(f"{RUN_NAME}-first", *run) as first:
            await asyncio.to_thread(wait_healthy, first)
            # The socket is open through the published port: the message posted reaches it live.
            ws = await connect(port, room)
            stored = post_message(base_url, room, "ann", "hello from the image")
            assert (await receive_json(ws))["id"] == stored["id"]
            assert message_texts(base_url, room) == ["hello from the image"]

            stopping = asyncio.create_task(asyncio.to_thread(docker, "stop", first))
            assert await wait_closed(ws, timeout=15) == 1001
            await stopping
            state = inspect(first)["State"]
            # Not the 10 s kill (137): rooms ended itself on SIGTERM.
            assert (state["Status"], state["ExitCode"]) == ("exited", 0), logs(first)
            assert "stopped" in logs(first)

        # A new container on the same volume has the history.
        with container(f"{RUN_NAME}-second", *run) as second:
            await asyncio.to_thread(wait_answering, base_url, 60, lambda: is_running(second), lambda: logs(second))
            assert message_texts(base_url, room) == ["hello from the image"]
