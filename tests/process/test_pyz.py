"""``make pyz``: built in a venv holding only requirements-build.txt, the one-file app runs with nothing but a
bare Python from anywhere, like ``server.py``: ``--version``, ``check-config``, and a server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.allocator import jemalloc_mapped, require_jemalloc
from tests.support.clients import connect, receive_json, send_json
from tests.support.processes import ROOT, STARTUP_SECONDS, free_port
from tests.support.redis import REDIS_URL, delete_prefix, prefixed_url, require_redis, unique_prefix


def bare_python() -> str:
    """The system interpreter if it is new enough for rooms, else the one running the tests."""
    system = "/usr/bin/python3"
    if os.path.exists(system):
        check = subprocess.run([system, "-c", "import sys; sys.exit(sys.version_info < (3, 11))"])
        if check.returncode == 0:
            return system
    return sys.executable


@dataclass
class Build:
    pyz: Path
    python: str
    scratch: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``rooms.pyz ARGS`` to completion, with the bare Python, from an empty directory of its own."""
        workdir = self.scratch / f"run-{uuid.uuid4().hex[:8]}"
        workdir.mkdir()
        env = {"PATH": os.environ["PATH"], "HOME": str(self.scratch), "SHIV_ROOT": str(self.scratch / "shiv-runs")}
        command = [self.python, "-I", str(self.pyz), *args]
        return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=120)


def project_version() -> str:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def requirement_names(path: str) -> set[str]:
    """The names pinned in a requirements file (not those of the files it includes)."""
    with open(path) as handle:
        lines = [line.split("#")[0].strip() for line in handle]
    return {line.split("==")[0].lower() for line in lines if line and not line.startswith("-")}


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    python = bare_python()
    # -I leaves out the user's site-packages and PYTHON* variables; a system interpreter with tornado
    # installed system-wide could run the app without the zip's copy, proving nothing.
    if subprocess.run([python, "-I", "-c", "import tornado"], capture_output=True).returncode == 0:
        reason = f"{python} -I can import tornado by itself, so it cannot show the file carries its own"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI needs an interpreter without tornado", pytrace=False)
        pytest.skip(reason)
    scratch = tmp_path_factory.mktemp("pyz")
    dist, stage = scratch / "dist", scratch / "stage"
    # The bare Python builds too: make creates a venv of its own from it, with requirements-build.txt alone.
    made = subprocess.run(
        ["make", "-C", ROOT, "pyz", f"DIST={dist}", f"BUILD={stage}", f"PYTHON={python}"],
        env={"PATH": os.environ["PATH"], "HOME": str(scratch)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, f"make pyz failed:\n{made.stdout}\n{made.stderr}"
    frozen = subprocess.run([stage / "venv" / "bin" / "python", "-m", "pip", "freeze"], capture_output=True, text=True)
    installed = {line.split("==")[0].lower() for line in frozen.stdout.split()}
    dev_only = requirement_names(os.path.join(ROOT, "requirements-dev.txt"))
    assert "shiv" in installed and not installed & dev_only, f"the build venv holds dev requirements: {installed}"
    yield Build(dist / "rooms.pyz", python, scratch)


def test_the_pyz_says_its_version_from_the_package_metadata(build):
    result = build.run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"rooms {project_version()}\n"


def test_the_pyz_checks_a_config_and_reaches_its_sqlite_database(build):
    config = build.scratch / "check.yaml"
    config.write_text("server:\n  port: 8123\n")
    url = f"sqlite:///{build.scratch / 'checked.db'}"
    result = build.run("check-config", "--connect", "--config", str(config), "--backend", url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"# config file: {config}" and "  port: 8123" in lines
    assert lines[-1] == f"# backend reached: {url}"
    refused = build.run("check-config", "--connect", "--backend", "sqlite:////no/such/directory/rooms.db")
    assert refused.returncode == 2 and "the directory /no/such/directory does not exist" in refused.stderr


def wait_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"rooms.pyz exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise AssertionError(f"rooms.pyz did not answer /healthz within {STARTUP_SECONDS}s:\n{log.read_text()}")


@pytest.mark.timeout(600)
@pytest.mark.gen_test(timeout=60)
async def test_the_pyz_serves_pages_api_and_websocket_from_an_empty_directory_and_exits_0_on_sigterm(build):
    workdir, home, shiv_root = (build.scratch / name for name in ("cwd", "home", "shiv"))
    for directory in (workdir, home, shiv_root):
        directory.mkdir()
    config = build.scratch / "empty.yaml"
    config.write_text("")
    log = build.scratch / "server.log"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SHIV_ROOT": str(shiv_root)}
    command = [
        build.python, "-I", str(build.pyz),
        "--config", str(config), "--port", str(port), "--backend", "memory://",
    ]  # fmt: skip
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_healthy(process, base_url, log)
        assert list(workdir.iterdir()) == []  # nothing extracted or written next to where it runs

        with urllib.request.urlopen(f"{base_url}/lobby/", timeout=5) as page:
            assert page.status == 200
            assert page.headers["Content-Type"].startswith("text/html")
            assert b"<html" in page.read().lower()
        with urllib.request.urlopen(f"{base_url}/static/rooms.css", timeout=5) as stylesheet:
            assert stylesheet.status == 200

        text = f"posted {uuid.uuid4().hex}"
        post = urllib.request.Request(
            f"{base_url}/api/rooms/lobby/messages",
            data=json.dumps({"handle": "ann", "message": text}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(post, timeout=5) as reply:
            assert reply.status == 201

        ws = await connect(port, "lobby", since="0")
        frame = await receive_json(ws)
        assert (frame["type"], frame["message"]) == ("message", text)
        await send_json(ws, {"handle": "bob", "message": "over the socket"})
        frame = await receive_json(ws)
        assert (frame["type"], frame["handle"], frame["message"]) == ("message", "bob", "over the socket")
        ws.close()

        process.terminate()
        assert process.wait(timeout=20) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_pyz_runs_on_jemalloc_where_it_is_installed_and_says_why_not_under_minus_i(build):
    """As the systemd units start it (``python3 rooms.pyz``): executed again on jemalloc. Under ``-I``, which
    ignores PYTHONMALLOC, it stays on Python's own allocator and says so."""
    require_jemalloc()
    env = {"PATH": os.environ["PATH"], "HOME": str(build.scratch), "SHIV_ROOT": str(build.scratch / "shiv-runs")}
    for isolated, mapped, said in ((False, True, "rooms allocates with jemalloc"), (True, False, "-E or -I")):
        port = free_port()
        log = build.scratch / f"allocator-{port}.log"
        command = [build.python, *(["-I"] if isolated else []), str(build.pyz), "--port", str(port)]
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [*command, "--backend", "memory://", "--config", os.devnull],
                cwd=build.scratch,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_healthy(process, f"http://127.0.0.1:{port}", log)
            assert jemalloc_mapped(process.pid) is mapped, log.read_text()
            assert said in log.read_text()
        finally:
            process.terminate()
            process.wait(timeout=20)


@pytest.mark.timeout(600)
@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_the_pyz_stores_on_sqlite_and_redis_with_the_bare_python(build, store):
    """Each store's driver comes from the zip: on the system's Python too, whose version may need more of
    them (redis-py wants async-timeout before 3.11.3)."""
    prefix = unique_prefix()
    url = {"sqlite": f"sqlite:///{build.scratch / f'{store}.db'}", "redis": prefixed_url(REDIS_URL, prefix)}[store]
    if store == "redis":
        await require_redis()
    config = build.scratch / "empty.yaml"
    config.write_text("")
    log = build.scratch / f"{store}.log"
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(build.scratch), "SHIV_ROOT": str(build.scratch / "shiv")}
    command = [build.python, "-I", str(build.pyz), "--config", str(config), "--port", str(port), "--backend", url]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=build.scratch, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_healthy(process, f"http://127.0.0.1:{port}", log)
        post = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/rooms/lobby/messages",
            data=json.dumps({"handle": "ann", "message": f"stored on {store}"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(post, timeout=5) as reply:
            assert (reply.status, json.load(reply)["message"]) == (201, f"stored on {store}")
        process.terminate()
        assert process.wait(timeout=20) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if store == "redis":
            await delete_prefix(REDIS_URL, prefix)
