"""Docker for the image tier: the daemon (a missing one skips, or fails under CI), the local Debian base image,
images and containers named for this test run and removed after it, Compose (v2's ``docker compose`` or
v1's ``docker-compose``), and the health Docker reports."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from tests.support.processes import ROOT

BASE_IMAGE = "debian:bookworm-slim"
BASE_IMAGE_LOCK = os.path.join(tempfile.gettempdir(), "rooms-test-base-image.lock")
# Every image, container, volume and Compose project a run makes carries this, so runs never meet.
RUN_NAME = f"rooms-test-{uuid.uuid4().hex[:8]}"
BUILD_SECONDS = 900
HEALTHY_SECONDS = 90


def docker_unavailable(reason: str) -> None:
    """Docker is missing: fail under CI (it must be there), skip with the reason elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must have a Docker daemon running", pytrace=False)
    pytest.skip(reason)


def require_docker() -> None:
    if shutil.which("docker") is None:
        docker_unavailable("docker is not installed")
    try:
        answer = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        docker_unavailable("the Docker daemon did not answer `docker info` within 30s")
    if answer.returncode != 0 or not answer.stdout.strip():
        said = answer.stderr.decode().strip().splitlines() or ["no answer"]
        docker_unavailable(f"no Docker daemon answers: {said[-1]}")


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def ensure_base_image() -> None:
    """``debian:bookworm-slim``, made from Debian's archive by packaging/debian-base.sh when Docker lacks it:
    by one test process at a time (xdist's workers, or another run), so that it is made once."""
    with open(BASE_IMAGE_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0:
            return
        made = subprocess.run(
            [os.path.join(ROOT, "packaging", "debian-base.sh"), BASE_IMAGE],
            capture_output=True,
            text=True,
            timeout=BUILD_SECONDS,
        )
    assert made.returncode == 0, f"packaging/debian-base.sh failed:\n{made.stdout}\n{made.stderr}"


def build_image(tag: str, context: str) -> None:
    docker("build", "--tag", tag, context, timeout=BUILD_SECONDS)


def remove_images(*tags: str) -> None:
    # --no-prune keeps the untagged layers under them: the next run's build finds them in its cache.
    docker("rmi", "--force", "--no-prune", *tags, check=False)


def inspect(name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = json.loads(docker("inspect", name).stdout)
    return found[0]


def logs(name: str) -> str:
    result = docker("logs", name, check=False)
    return result.stdout + result.stderr


def wait_healthy(name: str, seconds: float = HEALTHY_SECONDS) -> None:
    """Until Docker calls the container healthy: a bound, not a measurement."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = inspect(name)["State"]
        if not state["Running"]:
            raise AssertionError(f"{name} stopped ({state['Status']}, exit {state['ExitCode']}):\n{logs(name)}")
        if state["Health"]["Status"] == "healthy":
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} was not healthy within {seconds}s: {inspect(name)['State']['Health']}")


def is_running(name: str) -> bool:
    return bool(inspect(name)["State"]["Running"])


@contextmanager
def container(name: str, *run_args: str) -> Iterator[str]:
    """``docker run -d --name NAME RUN_ARGS...``; removed afterwards, with its anonymous volumes."""
    docker("run", "--detach", "--name", name, *run_args)
    try:
        yield name
    finally:
        docker("rm", "--force", "--volumes", name, check=False)


@contextmanager
def volume(name: str) -> Iterator[str]:
    docker("volume", "create", name)
    try:
        yield name
    finally:
        docker("volume", "rm", "--force", name, check=False)


class Compose:
    """One Compose project of compose.yaml: v2 (``docker compose``) where the CLI has it, else v1
    (``docker-compose``, Debian 12's), whose ``up`` cannot ``--wait``: then the test waits for health itself."""

    def __init__(self, project: str, environment: Mapping[str, str]) -> None:
        if docker("compose", "version", check=False).returncode == 0:
            self.command, self.can_wait = ["docker", "compose"], True
        elif shutil.which("docker-compose"):
            self.command, self.can_wait = ["docker-compose"], False
        else:
            docker_unavailable("neither `docker compose` nor `docker-compose` is installed")
        self.project = project
        # Only what the test gives: the caller's ROOMS_* variables would reach the containers.
        self.environment = {key: value for key, value in os.environ.items() if not key.startswith("ROOMS_")}
        self.environment.update(environment)

    def run(self, *args: str, profiles: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        chosen = [option for profile in profiles for option in ("--profile", profile)]
        command = [*self.command, "--project-name", self.project, *chosen, *args]
        result = subprocess.run(
            command, cwd=ROOT, env=self.environment, capture_output=True, text=True, timeout=BUILD_SECONDS
        )
        assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}"
        return result

    def container_of(self, service: str, profiles: tuple[str, ...] = ()) -> str:
        return self.run("ps", "--quiet", service, profiles=profiles).stdout.strip()

    def up(self, *services: str, profiles: tuple[str, ...] = ()) -> None:
        """Start ``services`` (all of the profiles' when none are named) and return once all are healthy."""
        if self.can_wait:
            self.run("up", "--detach", "--wait", *services, profiles=profiles)
            return
        self.run("up", "--detach", *services, profiles=profiles)
        for container_id in self.run("ps", "--quiet", *services, profiles=profiles).stdout.split():
            wait_healthy(container_id)

    def down(self, profiles: tuple[str, ...] = ()) -> None:
        """Stop and remove the project's containers, networks and volumes (its images stay)."""
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "10", profiles=profiles)

    @contextmanager
    def running(self, *services: str, profiles: tuple[str, ...] = ()) -> Iterator[Compose]:
        try:
            self.up(*services, profiles=profiles)
            yield self
        except AssertionError:
            print(self.run("logs", "--no-color", profiles=profiles).stdout)
            raise
        finally:
            self.down(profiles=profiles)
