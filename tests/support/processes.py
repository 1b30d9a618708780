"""Run ``server.py`` as a real process for tests: on a free port, with a config file of the test's own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STARTUP_SECONDS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(**extra: str) -> dict[str, str]:
    """The test's environment without ROOMS_* variables, which would override the config under test."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ROOMS_")}
    env.update(extra)
    return env


def run_server(*args: str, config: str = "", timeout: float = 30, env: dict[str, str] | None = None):
    """Run ``server.py`` to completion (for start-up failures); the CompletedProcess."""
    with tempfile.TemporaryDirectory() as workdir:
        config_path = os.path.join(workdir, "rooms.yaml")
        with open(config_path, "w") as handle:
            handle.write(config)
        return subprocess.run(
            [sys.executable, os.path.join(ROOT, "server.py"), "--config", config_path, *args],
            cwd=workdir,
            env=env or clean_environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


class ServerProcess:
    """``server.py`` started in a temporary working directory; ``stop()`` leaves nothing behind."""

    def __init__(
        self,
        backend_url: str = "memory://",
        config: str = "",
        port: int | None = None,
        preexec_fn: Callable[[], None] | None = None,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.workdir = tempfile.TemporaryDirectory()
        config_path = os.path.join(self.workdir.name, "rooms.yaml")
        with open(config_path, "w") as handle:
            handle.write(config)
        self.log_path = os.path.join(self.workdir.name, "server.log")
        self._log = open(self.log_path, "wb")
        command = [
            sys.executable, os.path.join(ROOT, "server.py"),
            "--config", config_path, "--port", str(self.port), "--backend", backend_url,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            cwd=self.workdir.name,
            env=clean_environment(**(environment or {})),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = STARTUP_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server.py exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise AssertionError(f"server.py did not answer /healthz within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        with open(self.log_path, "rb") as handle:
            return handle.read().decode(errors="replace")

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._log.close()
        self.workdir.cleanup()
        return self.process.returncode
