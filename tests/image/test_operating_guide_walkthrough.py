"""The operator guide, walked through on a fresh Debian 12 machine under a real systemd: the shell blocks of
docs/operating.md's "Install on Debian or Ubuntu", read from the guide's text, run in order as root (steps 1 to
6: the one-file app built from a clone, the user and its 0640 config, the secrets' environment file, the units
enabled, nginx with the one-process recipe, a first backup), then what an operator checks: the service and its
socket, a room through nginx over TLS, the client's address in the journal, the secrets in effect, the
credentials drop-in of "Secrets", a restart that refuses no connection, and a clean stop.

Only the placeholders the guide marks are filled in (tests/support/walkthrough.py): the repository to clone, and
certbot's certificate, made by openssl at the paths the recipe names since no certificate authority reaches this
machine. The guide's example name stays, and the client sends it as Host. The tests run in this file's order,
on one machine: each goes on from where the one before left it, as an operator does."""

from __future__ import annotations

import http.client
import json
import re
import ssl
import time
import tomllib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tests.support.clients import receive_json, wait_closed
from tests.support.docker import RUN_NAME, inspect, remove_images
from tests.support.processes import free_port
from tests.support.waiting import eventually
from tests.support.walkthrough import (
    CHECKOUT,
    SITE,
    Machine,
    apt_packages,
    booted,
    build_machine_image,
    certificate_paths,
    committed,
    credentials_block,
    for_this_machine,
    install_blocks,
    repository_to_clone,
)

pytestmark = pytest.mark.timeout(900)


class Site:
    """The machine after the guide's install: its nginx on the host's loopback, over TLS, for the guide's name."""

    def __init__(self, machine: Machine, https_port: int, certificate: str) -> None:
        self.machine = machine
        self.https_port = https_port
        # The certificate is for the site's name, and the client reaches it by address: trusted, not matched.
        self.tls = ssl.create_default_context(cadata=certificate)
        self.tls.check_hostname = False

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Host": SITE}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPSConnection("127.0.0.1", self.https_port, timeout=15, context=self.tls)
        try:
            connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data else None
        finally:
            connection.close()

    async def socket(self, room: str) -> WebSocketClientConnection:
        url = f"wss://127.0.0.1:{self.https_port}/chat/{room}/"
        return await websocket_connect(HTTPRequest(url, headers={"Host": SITE}, ssl_options=self.tls))

    def shown(self, unit: str, *properties: str) -> dict[str, str]:
        said = self.machine.sh(f"systemctl show {unit} " + " ".join(f"--property {name}" for name in properties))
        return dict(line.split("=", 1) for line in said.splitlines())


@pytest.fixture(scope="module")
def site(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    blocks = install_blocks()
    image = f"{RUN_NAME}-systemd-debian"
    build_machine_image(image, apt_packages(blocks))
    repository = repository_to_clone(tmp_path_factory.mktemp("clone"))
    https_port = free_port()
    try:
        with booted(f"{RUN_NAME}-guide", image, repository, https_port) as machine:
            # "degraded" would do too: a unit for hardware that a container lacks may fail, and rooms needs none.
            assert machine.wait_booted() in ("running", "degraded")
            # The first block clones the checkout and goes into it; the operator's shell stays there after.
            for number, block in enumerate(blocks):
                started = time.monotonic()
                machine.sh(for_this_machine(block), workdir="/root" if number == 0 else CHECKOUT)
                print(f"the guide's install block {number + 1} ran in {time.monotonic() - started:.1f}s")
            certificate, _ = certificate_paths()
            yield Site(machine, https_port, machine.sh(f"cat {certificate}"))
    finally:
        remove_images(image)


def moderator_token_of_environment_file(machine: Machine) -> str:
    found = re.search(r"(?m)^ROOMS_MODERATOR_TOKEN=(\S+)$", machine.sh("cat /etc/rooms/rooms.env"))
    assert found, "the environment file has no moderator token"
    return found.group(1)


def test_rooms_runs_as_an_enabled_service_on_its_socket_with_its_files_kept_private(site):
    machine = site.machine
    assert machine.sh("systemctl is-active rooms.service rooms.socket").split() == ["active", "active"]
    assert machine.sh("systemctl is-enabled rooms.service rooms.socket").split() == ["enabled", "enabled"]
    # "running": the socket listens, and rooms holds it (a socket with no service running is "listening").
    listening = site.shown("rooms.socket", "SubState", "Listen")
    assert listening == {"SubState": "running", "Listen": "127.0.0.1:8000 (Stream)"}
    assert json.loads(machine.sh("curl -s http://127.0.0.1:8000/healthz")) == {"status": "ok", "backend": "sqlite"}
    # The STATUS line `systemctl status rooms` shows, as the guide says: sockets, rooms, backend.
    status = site.shown("rooms.service", "StatusText")["StatusText"]
    assert re.fullmatch(r"\d+ sockets in \d+ rooms, backend sqlite", status), status
    # The config for rooms' group only, the secrets for root only, the database rooms' own.
    assert machine.sh("stat -c '%a %U:%G' /etc/rooms/config.yaml /etc/rooms/rooms.env").split("\n")[:2] == [
        "640 root:rooms",
        "600 root:root",
    ]
    assert machine.sh("stat -c '%U' /var/lib/rooms/rooms.db").strip() == "rooms"
    assert "python3 /opt/rooms/rooms.pyz" in site.shown("rooms.service", "ExecStart")["ExecStart"]
    # The guide installs jemalloc, and rooms runs on it inside the unit's sandbox (MemoryDenyWriteExecute, the
    # system call filter): loaded, with its thread that gives freed pages back.
    pid = site.shown("rooms.service", "MainPID")["MainPID"]
    assert "/libjemalloc.so.2" in machine.sh(f"cat /proc/{pid}/maps")
    assert "jemalloc_bg_thd" in machine.sh(f"cat /proc/{pid}/task/*/comm").split()
    assert "rooms allocates with jemalloc (loaded, Python's small-object allocator off)" in machine.journal("rooms")
    # The one file carries its package's metadata: the version of the clone's pyproject.toml.
    version = tomllib.loads(committed("pyproject.toml"))["project"]["version"]
    assert machine.sh("python3 /opt/rooms/rooms.pyz --version").strip() == f"rooms {version}"
    # The first backup, a sound copy, root's.
    backups = machine.sh("ls /var/lib/rooms/backups").split()
    assert len(backups) == 1 and backups[0].startswith("rooms-"), backups
    assert machine.sh(f"stat -c '%a %U' /var/lib/rooms/backups/{backups[0]}").strip() == "600 root"


@pytest.mark.gen_test(timeout=60)
async def test_through_nginx_a_message_is_stored_sent_live_and_logged_with_the_client_address(site):
    room = f"guide-{uuid.uuid4().hex[:8]}"
    ws = await site.socket(room)
    status, stored = site.request("POST", f"/api/rooms/{room}/messages", {"handle": "ann", "message": "hello"})
    assert status == 201
    assert (await receive_json(ws))["id"] == stored["id"]
    status, history = site.request("GET", f"/api/rooms/{room}/messages")
    assert (status, [message["message"] for message in history["messages"]]) == (200, ["hello"])
    ws.close()

    # nginx saw the host's Docker gateway as the client (the published port) and said so in X-Forwarded-For;
    # rooms, reached by nginx over loopback, logs that address, not its own peer's.
    gateway = inspect(site.machine.name)["NetworkSettings"]["Gateway"]
    logged = f"201 POST /api/rooms/{room}/messages ({gateway})"
    await eventually(lambda: logged in site.machine.journal("rooms"), message=f"the journal never showed {logged!r}")


def test_the_moderator_token_of_the_environment_file_is_in_effect(site):
    token = moderator_token_of_environment_file(site.machine)
    assert site.request("GET", "/api/bans", token=token) == (200, {"bans": []})
    assert site.request("GET", "/api/bans", token="not-" + token)[0] == 401


def test_a_restart_keeps_the_socket_so_no_request_is_refused(site):
    machine = site.machine
    before = site.shown("rooms.service", "MainPID")["MainPID"]
    # Requests while rooms restarts: each waits in the socket's queue and is answered (curl -f fails otherwise).
    machine.sh(
        "systemctl restart rooms & for attempt in $(seq 30); do curl -sf -o /dev/null http://127.0.0.1:8000/healthz; "
        "done; wait"
    )
    after = site.shown("rooms.service", "MainPID")["MainPID"]
    assert after not in (before, "0")
    # With the service stopped outright, the socket still listens: a request starts rooms and is answered.
    machine.sh("systemctl stop rooms.service")
    assert machine.run("systemctl", "is-active", "rooms.service").stdout.strip() == "inactive"
    assert json.loads(machine.sh("curl -s http://127.0.0.1:8000/healthz"))["status"] == "ok"
    assert machine.sh("systemctl is-active rooms.service").strip() == "active"


def test_the_credentials_drop_in_takes_the_secrets_over_under_this_systemd(site):
    machine = site.machine
    old_token = moderator_token_of_environment_file(machine)
    machine.sh(for_this_machine(credentials_block()), workdir=CHECKOUT)
    assert machine.sh("systemctl is-active rooms.service").strip() == "active"
    token = machine.sh("cat /etc/rooms/credentials/moderator_token").strip()
    assert site.request("GET", "/api/bans", token=token) == (200, {"bans": []})
    assert site.request("GET", "/api/bans", token=old_token)[0] == 401
    # Handed over as files that only the service can read, never in its environment.
    environment = machine.sh("tr '\\0' '\\n' < /proc/$(systemctl show --property MainPID --value rooms)/environ")
    assert "ROOMS_MODERATOR_TOKEN_FILE=/run/credentials/rooms.service/moderator_token" in environment.split()
    assert token not in environment


@pytest.mark.gen_test(timeout=60)
async def test_stop_closes_sockets_with_1001_and_ends_rooms_with_status_0(site):
    ws = await site.socket(f"guide-{uuid.uuid4().hex[:8]}")
    site.machine.sh("systemctl stop rooms")
    assert await wait_closed(ws, timeout=15) == 1001
    shown = site.shown("rooms.service", "ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
    # ExecMainCode 1: exited by itself (CLD_EXITED), not killed.
    assert shown == {"ActiveState": "inactive", "Result": "success", "ExecMainCode": "1", "ExecMainStatus": "0"}
    assert "stopped" in site.machine.journal("rooms")
