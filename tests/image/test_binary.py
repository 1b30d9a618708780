"""`make binary`: rooms frozen by PyInstaller into one file, run in a container of Debian's minimal base, which
has no Python: it serves a room on SQLite in a mounted folder, reaches every store's server, and stops cleanly
on `docker stop`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tomllib
import urllib.request
import uuid
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.support.api import message_texts, post_message, wait_answering
from tests.support.clients import connect, receive_json, wait_closed
from tests.support.docker import BUILD_SECONDS, RUN_NAME, container, docker, inspect, is_running, logs
from tests.support.factories.sql import MariaDBFactory, PostgreSQLFactory
from tests.support.processes import ROOT, free_port
from tests.support.redis import REDIS_URL, delete_prefix, prefixed_url, require_redis, unique_prefix

NOBODY = "65534:65534"


@pytest.fixture(scope="module")
def binary(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("binary")
    made = subprocess.run(
        ["make", "-C", ROOT, "binary", f"DIST={dist}", f"BINARY_PYTHON={sys.executable}"],
        capture_output=True,
        text=True,
        timeout=BUILD_SECONDS,
    )
    assert made.returncode == 0, f"make binary failed:\n{made.stdout}\n{made.stderr}"
    return dist / "rooms"


def run_binary(
    binary: Path, name: str, *docker_args: str, command: tuple[str, ...] = ()
) -> AbstractContextManager[str]:
    """The binary as the command of a container of the bare Debian base, as an unprivileged user."""
    return container(
        name, "--user", NOBODY, "--volume", f"{binary}:/usr/local/bin/rooms:ro", *docker_args,
        "debian:bookworm-slim", "rooms", *command,
    )  # fmt: skip


def project_version() -> str:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        version: str = tomllib.load(handle)["project"]["version"]
    return version


def test_the_binary_carries_the_package_metadata_for_its_version(binary):
    viewer = Path(ROOT, "build", "binary-venv", "bin", "pyi-archive_viewer")
    listed = subprocess.run([viewer, "--list", "--brief", binary], capture_output=True, text=True, timeout=60)
    assert f"rooms-{project_version()}.dist-info/METADATA" in listed.stdout.split()


def test_rooms_version_in_the_binary_reads_the_metadata_it_carries(binary):
    """In a container without Python or a checkout, so the version can only come from the frozen metadata."""
    answered = docker(
        "run", "--rm", "--user", NOBODY, "--volume", f"{binary}:/usr/local/bin/rooms:ro",
        "debian:bookworm-slim", "rooms", "--version",
    )  # fmt: skip
    assert answered.stdout.strip() == f"rooms {project_version()}"
    # It answers before any config is read: one that does not exist is no matter.
    answered = docker(
        "run", "--rm", "--user", NOBODY, "--volume", f"{binary}:/usr/local/bin/rooms:ro",
        "debian:bookworm-slim", "rooms", "--config", "/nonexistent.yaml", "--version",
    )  # fmt: skip
    assert answered.stdout.strip() == f"rooms {project_version()}"


def test_jemalloc_required_of_the_binary_is_a_config_error_saying_why(binary, tmp_path):
    config = tmp_path / "rooms.yaml"
    config.write_text("server:\n  allocator: jemalloc\n")
    config.chmod(0o644)
    answered = docker(
        "run", "--rm", "--user", NOBODY, "--volume", f"{binary}:/usr/local/bin/rooms:ro",
        "--volume", f"{config}:/etc/rooms.yaml:ro",
        "debian:bookworm-slim", "rooms", "--config", "/etc/rooms.yaml", "check-config", check=False,
    )  # fmt: skip
    assert answered.returncode == 2, answered.stdout + answered.stderr
    assert answered.stderr.strip().splitlines() == [
        "rooms: config error: server.allocator: jemalloc cannot be used: the one-executable build's Python ignores "
        "PYTHONMALLOC"
    ]


@pytest.mark.timeout(600)
@pytest.mark.gen_test(timeout=300)
async def test_the_binary_serves_a_room_on_sqlite_without_python_and_stops_cleanly(binary, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # written by the container's user
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    room = f"binary-{uuid.uuid4().hex[:8]}"
    run = (
        "--publish", f"127.0.0.1:{port}:8000", "--volume", f"{data}:/var/lib/rooms",
        "--env", "ROOMS_HOST=0.0.0.0", "--env", "ROOMS_BACKEND_URL=sqlite:////var/lib/rooms/rooms.db",
    )  # fmt: skip
    with run_binary(binary, f"{RUN_NAME}-binary", *run) as name:
        python = docker("exec", name, "sh", "-c", "command -v python3 python || true").stdout
        assert python == "", f"the base image has a Python: {python}"
        health = await asyncio.to_thread(wait_answering, base_url, 60, lambda: is_running(name), lambda: logs(name))
        assert health == {"status": "ok", "backend": "sqlite"}
        # Its frozen Python cannot be put on jemalloc: it says so, rather than how to install jemalloc.
        said = "rooms allocates with Python's own allocator: the one-executable build's Python ignores PYTHONMALLOC"
        assert said in logs(name)

        ws = await connect(port, room)
        stored = post_message(base_url, room, "ann", "hello from the binary")
        assert (await receive_json(ws))["id"] == stored["id"]
        assert message_texts(base_url, room) == ["hello from the binary"]
        # The templates and static files are in the binary: the room page renders the message.
        with urllib.request.urlopen(f"{base_url}/{room}/", timeout=5) as page:
            assert "hello from the binary" in page.read().decode()
        with urllib.request.urlopen(f"{base_url}/static/rooms.css", timeout=5) as stylesheet:
            assert stylesheet.status == 200

        stopping = asyncio.create_task(asyncio.to_thread(docker, "stop", name))
        assert await wait_closed(ws, timeout=15) == 1001
        await stopping
        state = inspect(name)["State"]
        assert (state["Status"], state["ExitCode"]) == ("exited", 0), logs(name)
    assert (data / "rooms.db").stat().st_size > 0

    with run_binary(binary, f"{RUN_NAME}-binary-again", *run) as name:
        await asyncio.to_thread(wait_answering, base_url, 60, lambda: is_running(name), lambda: logs(name))
        assert message_texts(base_url, room) == ["hello from the binary"]


@pytest.mark.timeout(300)
@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("store", ["postgresql", "mysql", "redis"])
async def test_the_binary_carries_the_driver_of_every_store(binary, store):
    """Each store's driver is imported only when backend.url names it: the binary must have frozen it anyway."""
    factory = {"postgresql": PostgreSQLFactory, "mysql": MariaDBFactory}.get(store)
    prefix = unique_prefix()
    if factory is None:
        await require_redis()
        url = prefixed_url(REDIS_URL, prefix)
    else:
        made = factory()
        url = made.new_url()
    port = free_port()
    try:
        # The host's network: the services listen on its loopback.
        command = ("--port", str(port), "--backend", url)
        with run_binary(binary, f"{RUN_NAME}-{store}", "--network", "host", command=command) as name:
            health = await asyncio.to_thread(
                wait_answering, f"http://127.0.0.1:{port}", 60, lambda: is_running(name), lambda: logs(name)
            )
            assert health == {"status": "ok", "backend": store}
            docker("stop", name)
            assert inspect(name)["State"]["ExitCode"] == 0, logs(name)
    finally:
        if factory is None:
            await delete_prefix(REDIS_URL, prefix)
        else:
            await made.dispose()
