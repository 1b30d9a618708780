"""The Dockerfile's image, run as an operator runs it: healthy by its own HEALTHCHECK, on jemalloc, a room served
through a published port, its data in a volume that outlives the container, and `docker stop` a clean shutdown."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
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
            # rooms, the container's first process, runs on the jemalloc the image installs, as it says at start.
            assert "/libjemalloc.so.2" in docker("exec", first, "cat", "/proc/1/maps").stdout
            assert "rooms allocates with jemalloc (loaded, Python's small-object allocator off)" in logs(first)
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


@pytest.mark.timeout(300)
@pytest.mark.gen_test(timeout=120)
async def test_the_healthcheck_passes_with_allowed_hosts_set_and_metrics_follow_the_mounted_config(
    rooms_image, tmp_path
):
    """The HEALTHCHECK asks from inside the container (loopback), so a config that names the public host does
    not turn it unhealthy; the host's own requests come from the Docker network's gateway, which the operator
    adds to ``metrics_allowed`` as docs/operating.md says."""
    config = tmp_path / "config.yaml"
    config.write_text(
        'server:\n  allowed_hosts: ["chat.example.org"]\n'
        '  metrics_allowed: ["127.0.0.1/8", "::1", "172.16.0.0/12", "192.168.0.0/16", "10.0.0.0/8"]\n'
    )
    config.chmod(0o644)  # read by the container's user
    port = free_port()
    run = (
        "--publish", f"127.0.0.1:{port}:8000",
        "--volume", f"{config}:/etc/rooms/config.yaml:ro", "--env", "ROOMS_CONFIG=/etc/rooms/config.yaml",
        # The image's own check, asked every second rather than every ten: the test need not wait for it.
        "--health-interval", "1s",
        rooms_image,
    )  # fmt: skip
    with container(f"{RUN_NAME}-hosts", *run) as name:
        await asyncio.to_thread(wait_healthy, name)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/lobby/", timeout=5)
        assert refused.value.code == 400  # not the configured host
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as metrics:
            assert metrics.status == 200
