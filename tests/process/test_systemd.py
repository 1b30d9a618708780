"""rooms under systemd: the notify protocol, socket activation, ``--check-config`` and the unit files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from tests.support.processes import ROOT, clean_environment, run_server

SERVER = os.path.join(ROOT, "server.py")


def start(env: dict[str, str], *args: str, listener: socket.socket | None = None) -> subprocess.Popen[bytes]:
    """``server.py`` on memory; with ``listener``, handed to it as systemd does: fd 3, LISTEN_FDS=1 and
    LISTEN_PID (the shell's pid, which ``exec`` keeps for the server)."""
    command = [sys.executable, SERVER, "--backend", "memory://", "--config", os.devnull, *args]
    if listener is None:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fd = listener.fileno()
    return subprocess.Popen(
        ["sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', *command],
        env={**env, "LISTEN_FDS": "1"},
        pass_fds=(3,),
        preexec_fn=lambda: os.dup2(fd, 3),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
        return response.status, response.read()


def wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited with {process.returncode}"
        try:
            get(port, "/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not answer /healthz")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(15)


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ready_then_watchdog_pings_then_stopping_reach_the_notify_socket(abstract):
    with tempfile.TemporaryDirectory() as directory:
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"rooms-test-{os.getpid()}-{time.monotonic_ns()}"
        receiver.bind("\0" + name if abstract else os.path.join(directory, "notify"))
        receiver.settimeout(10)
        address = "@" + name if abstract else os.path.join(directory, "notify")
        port = _free_port()
        # 0.3 s: the server pings three times a period, every 0.1 s.
        env = clean_environment(NOTIFY_SOCKET=address, WATCHDOG_USEC="300000")
        process = start(env, "--port", str(port))
        try:
            messages = [receiver.recv(4096).decode() for _ in range(4)]
            assert messages[0].startswith("READY=1\nSTATUS=") and "backend memory" in messages[0]
            assert all(m.startswith("WATCHDOG=1\nSTATUS=0 sockets in 0 rooms") for m in messages[1:])
            assert stop(process) == 0
            rest = []
            while not rest or not rest[-1].startswith("STOPPING=1"):
                rest.append(receiver.recv(4096).decode())
            assert all(m.startswith("WATCHDOG=1") for m in rest[:-1])
        finally:
            if process.poll() is None:
                process.kill()
            receiver.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_socket_activation_serves_the_socket_passed_and_a_restart_refuses_nobody():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    env = clean_environment()
    # --port names another port: the server must take the socket it was handed instead.
    first = start(env, "--port", "1", listener=listener)
    try:
        wait_healthy(port, first)
        body = json.dumps({"handle": "ann", "message": "through fd 3"}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/rooms/lobby/messages",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
        assert stop(first) == 0
        # Between the two processes the kernel still holds the socket: a client connects and waits.
        waiting = socket.create_connection(("127.0.0.1", port), timeout=20)
        waiting.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        second = start(env, "--port", "1", listener=listener)
        try:
            answer = b""
            while chunk := waiting.recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert b'"status":"ok"' in answer
        finally:
            waiting.close()
            assert stop(second) == 0
    finally:
        if first.poll() is None:
            first.kill()
        listener.close()


def test_without_systemd_the_server_listens_on_its_own_port_and_ignores_another_process_sockets():
    """LISTEN_PID naming another process (a parent's variables inherited) is not for this one."""
    port = _free_port()
    env = clean_environment(LISTEN_FDS="1", LISTEN_PID="1")
    process = start(env, "--port", str(port))
    try:
        wait_healthy(port, process)
        assert get(port, "/healthz")[0] == 200
    finally:
        assert stop(process) == 0


def test_check_config_prints_the_resolved_config_with_secrets_masked_and_starts_nothing():
    result = run_server(
        "--check-config",
        "--backend",
        "postgresql://rooms:hunter2@127.0.0.1:1/rooms",
        config="limits:\n  burst: 7\n",
    )
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert "url: postgresql://rooms:********@127.0.0.1:1/rooms" in result.stdout
    assert "burst: 7" in result.stdout and "port: 8000" in result.stdout
    # Port 1 of a database that is not there: a server would have retried it and exited 1.


@pytest.mark.parametrize(
    ("config", "args", "named"),
    [
        ("limits:\n  burst: many\n", (), "limits.burst"),
        ("", ("--backend", "redis://127.0.0.1/0?nonsense=1"), "backend.url"),
        ("server:\n  trusted_proxies: [nowhere]\n", (), "server.trusted_proxies"),
    ],
)
def test_check_config_exits_2_naming_the_bad_key(config, args, named):
    result = run_server("--check-config", *args, config=config)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert named in line


UNIT_FILES = ["rooms.service", "rooms.socket", "rooms@.service", "rooms@.socket"]


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing; .ci/run installs Debian's systemd package")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    return found


@pytest.mark.parametrize("unit", ["rooms.service", "rooms@.service"])
def test_service_units_score_2_or_lower_on_systemd_analyze_security(unit):
    analyze = systemd_analyze()
    path = os.path.join(ROOT, "systemd", unit)
    result = subprocess.run([analyze, "security", "--offline=yes", path], capture_output=True, text=True, timeout=60)
    last = result.stdout.strip().splitlines()[-1]
    assert "Overall exposure level" in last, result.stdout + result.stderr
    exposure = float(last.split(":")[1].split()[0])
    assert exposure <= 2.0, result.stdout


def test_units_are_clean_on_systemd_analyze_verify(tmp_path):
    analyze = systemd_analyze()
    for name in UNIT_FILES:
        shutil.copy(os.path.join(ROOT, "systemd", name), tmp_path / name)
    # A template is verified as an instance of it, as systemctl would start it.
    for kind in ("service", "socket"):
        (tmp_path / f"rooms@8001.{kind}").symlink_to(f"rooms@.{kind}")
    units = [
        str(tmp_path / name) for name in ("rooms.service", "rooms.socket", "rooms@8001.service", "rooms@8001.socket")
    ]
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60)
    findings = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 0 and not findings, "\n".join(findings)


CREDENTIALS_DROP_IN = os.path.join(ROOT, "systemd", "rooms.service.d", "credentials.conf")


def _units_with_the_credentials_drop_in(directory, drop_in_text: str) -> list[str]:
    """The units in ``directory`` with the drop-in installed for both services, as the guide installs it."""
    for name in UNIT_FILES:
        shutil.copy(os.path.join(ROOT, "systemd", name), directory / name)
    for kind in ("service", "socket"):
        (directory / f"rooms@8001.{kind}").symlink_to(f"rooms@.{kind}")
    for service in ("rooms.service", "rooms@.service"):
        (directory / f"{service}.d").mkdir()
        (directory / f"{service}.d" / "credentials.conf").write_text(drop_in_text)
    return [
        str(directory / name) for name in ("rooms.service", "rooms.socket", "rooms@8001.service", "rooms@8001.socket")
    ]


def test_the_credentials_drop_in_is_clean_on_verify_with_both_services_and_keeps_their_score(tmp_path):
    analyze = systemd_analyze()
    with open(CREDENTIALS_DROP_IN, encoding="utf-8") as handle:
        drop_in = handle.read()
    assert "LoadCredential=jwt_secret:" in drop_in and "ROOMS_JWT_SECRET_FILE=%d/jwt_secret" in drop_in
    # verify reads the drop-ins beside the units it is given: a wrong line in one is reported.
    broken = tmp_path / "broken"
    broken.mkdir()
    units = _units_with_the_credentials_drop_in(broken, drop_in + "NoSuchSetting=1\n")
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60)
    assert "credentials.conf" in result.stderr and "NoSuchSetting" in result.stderr, result.stderr

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    units = _units_with_the_credentials_drop_in(shipped, drop_in)
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60)
    findings = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 0 and not findings, "\n".join(findings)
    for unit in (units[0], units[2]):
        result = subprocess.run(
            [analyze, "security", "--offline=yes", unit], capture_output=True, text=True, timeout=60
        )
        last = result.stdout.strip().splitlines()[-1]
        assert "Overall exposure level" in last and float(last.split(":")[1].split()[0]) <= 2.0, result.stdout


@pytest.mark.parametrize("unit", ["rooms.service", "rooms@.service"])
def test_the_services_read_an_optional_environment_file_and_need_no_credential(unit):
    with open(os.path.join(ROOT, "systemd", unit), encoding="utf-8") as handle:
        settings = [line.strip() for line in handle if not line.startswith("#")]
    # "-": a missing file is no error; a LoadCredential= whose file is missing would fail the unit.
    assert "EnvironmentFile=-/etc/rooms/rooms.env" in settings
    assert not any(line.startswith("LoadCredential") for line in settings)
    assert {"User=rooms", "Group=rooms", "DynamicUser=yes"} <= set(settings)
