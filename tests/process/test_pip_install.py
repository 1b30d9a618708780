"""``pip install .`` into a fresh venv gives a working ``rooms`` command: it says its version and serves a
room's page and its assets from the installed package, run from a directory far from the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.support.allocator import jemalloc_mapped, require_jemalloc
from tests.support.processes import ROOT, STARTUP_SECONDS, free_port

# What pip install . reads (the Makefile's SOURCES): copied, so the build writes nothing into the checkout.
SOURCES = ("server.py", "rooms", "backends", "templates", "static", "pyproject.toml", "requirements.txt", "README.md")


def project_version() -> str:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``rooms`` script of a fresh venv that ``pip install .`` filled."""
    scratch = tmp_path_factory.mktemp("install")
    source = scratch / "source"
    source.mkdir()
    for name in SOURCES:
        if os.path.isdir(os.path.join(ROOT, name)):
            shutil.copytree(os.path.join(ROOT, name), source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(os.path.join(ROOT, name), source / name)
    venv = scratch / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    pip = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr
    shutil.rmtree(source)  # what runs is the installed copy, nothing else
    return venv / "bin" / "rooms"


def wait_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"rooms exited with {process.returncode}:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"rooms did not answer /healthz within {STARTUP_SECONDS}s:\n{log.read_text()}")


def test_the_installed_rooms_says_its_version(installed, tmp_path):
    result = subprocess.run([installed, "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"rooms {project_version()}\n"


def test_the_installed_rooms_serves_a_room_page_and_its_assets_and_stops_with_0(installed, tmp_path):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "rooms.log"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [installed, "serve", "--port", str(port), "--backend", "memory://"],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(process, base_url, log)
        with urllib.request.urlopen(f"{base_url}/lobby/", timeout=5) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        with urllib.request.urlopen(f"{base_url}/static/rooms.css", timeout=5) as stylesheet:
            assert stylesheet.status == 200
        process.terminate()
        assert process.wait(timeout=20) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_installed_rooms_runs_on_jemalloc_where_it_is_installed(installed, tmp_path):
    require_jemalloc()
    port = free_port()
    log = tmp_path / "rooms.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [installed, "--port", str(port), "--backend", "memory://"],
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(process, f"http://127.0.0.1:{port}", log)
        assert jemalloc_mapped(process.pid), log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=20)
