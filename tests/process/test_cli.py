"""The ``rooms`` command as a real process: ``--version``, ``check-config`` naming the file it read,
``token`` and ``invite`` whose output a running server with the same config accepts, ``backup`` and
``restore``, and the arguments it refuses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.support.clients import receive_json, send_json
from tests.support.processes import ROOT, ServerProcess, clean_environment, free_port
from tests.support.tokens import SECRET, private_key, public_pem

INVITE_SECRET = "an-invite-secret-of-the-tests-0123456789"
PRIVATE_PEM = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
IDENTITY = f"rooms:\n  private: [team-*]\n  invite_secret: {INVITE_SECRET}\n"


def rooms(*args: str, cwd: Path | str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "server.py"), *args],
        cwd=cwd,
        env=env or clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def config_of(server: ServerProcess) -> str:
    return os.path.join(server.workdir.name, "rooms.yaml")


def mint(server: ServerProcess, *args: str) -> str:
    result = rooms("--config", config_of(server), "token", *args, cwd=server.workdir.name)
    assert result.returncode == 0, result.stderr
    [token] = result.stdout.split()
    return token


def request(url: str, token: str | None = None, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """The status and the body (JSON if it is) of a GET, or of a POST of ``body``."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as reply:
            status, raw, kind = reply.status, reply.read(), reply.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    return status, json.loads(raw) if kind.startswith("application/json") else raw.decode()


@pytest.fixture
def server():
    process = ServerProcess(config=f"auth:\n  jwt_secret: {SECRET}\n{IDENTITY}")
    process.wait_healthy()
    yield process
    process.stop()


def test_version_from_a_checkout_is_its_git_revision(tmp_path):
    result = rooms("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"rooms \S+\n", result.stdout)
    if os.path.exists(os.path.join(ROOT, ".git")):
        described = subprocess.run(
            ["git", "-C", ROOT, "describe", "--always", "--dirty", "--tags"], capture_output=True, text=True
        )
        assert result.stdout == f"rooms {described.stdout.strip()}\n"


def test_check_config_says_which_file_it_read(tmp_path):
    config = tmp_path / "rooms.yaml"
    config.write_text("server:\n  port: 8123\n")
    result = rooms("check-config", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"# config file: {config}"
    assert "port: 8123" in result.stdout
    (tmp_path / "config.yaml").write_text("server:\n  port: 8124\n")
    found = rooms("check-config", cwd=tmp_path)
    assert found.stdout.splitlines()[0] == f"# config file: {tmp_path / 'config.yaml'}"


def test_check_config_says_when_no_file_was_found_and_the_defaults_are_used(tmp_path):
    result = rooms("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("# no config file") and str(tmp_path) in first and "defaults" in first


def test_a_yaml_error_names_its_line_and_column_in_one_line(tmp_path):
    config = tmp_path / "rooms.yaml"
    config.write_text("server:\n  port: 8000\n   host: x\n")
    result = rooms("check-config", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"rooms: config error: config: {config} line 3, column 8: mapping values are not allowed here"
    ]


def test_a_minted_token_sends_under_its_name_over_the_api_and_the_socket(server):
    token = mint(server, "--sub", "ann", "--name", "Ann")
    status, message = request(f"{server.base_url}/api/rooms/lobby/messages", token, {"handle": "x", "message": "hi"})
    assert status == 201, message
    assert (message["handle"], message["user"]) == ("Ann", "ann")


@pytest.mark.gen_test(timeout=30)
async def test_a_minted_token_opens_a_socket(server):
    token = mint(server, "--sub", "bob")
    ws = await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{server.port}/chat/lobby/?token={token}"))
    await send_json(ws, {"handle": "whoever", "message": "over the socket"})
    frame = await receive_json(ws, timeout=10)
    assert (frame["type"], frame["handle"], frame["user"]) == ("message", "bob", "bob")
    ws.close()


def test_a_minted_mod_token_moderates_and_a_plain_one_does_not(server):
    url = f"{server.base_url}/api/rooms/lobby/invites"
    assert request(url, mint(server, "--sub", "mo", "--mod"), {"seconds": 60})[0] == 201
    assert request(url, mint(server, "--sub", "ann"), {"seconds": 60})[0] == 401


def test_a_minted_token_with_rooms_opens_those_private_rooms_only(server):
    token = mint(server, "--sub", "ann", "--rooms", "team-*")
    assert request(f"{server.base_url}/team-a/?token={token}")[0] == 200
    assert request(f"{server.base_url}/api/rooms/team-a/messages", token)[0] == 200
    assert request(f"{server.base_url}/api/rooms/team-a/messages")[0] == 404
    other = mint(server, "--sub", "ann", "--rooms", "hq,lobby")
    assert request(f"{server.base_url}/api/rooms/team-a/messages", other)[0] == 404


def test_a_minted_token_carries_the_claims_asked_for(server):
    before = int(time.time())
    token = mint(server, "--sub", "ann", "--name", "Ann", "--mod", "--rooms", "team-*", "--rooms", "hq", "--ttl", "15m")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert {key: claims[key] for key in ("sub", "name", "mod", "rooms")} == {
        "sub": "ann", "name": "Ann", "mod": True, "rooms": ["team-*", "hq"],
    }  # fmt: skip
    assert before + 900 <= claims["exp"] <= int(time.time()) + 900


def test_a_minted_token_lives_exactly_its_ttl(server):
    url = f"{server.base_url}/api/rooms/lobby/messages"
    for ttl, seconds in (("90s", 90), ("15m", 900), ("2h", 7200), ("7d", 604800)):
        token = mint(server, "--sub", "ann", "--ttl", ttl)
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
        assert claims["exp"] - claims["iat"] == seconds
        assert request(url, token, {"handle": "x", "message": f"within {ttl}"})[0] == 201
    # Past its exp (and the leeway) the server refuses it: tests/app/test_identity.py proves that for any token,
    # so here only the claim the command writes is checked, without waiting out the leeway.


@pytest.mark.parametrize("algorithm", ["EdDSA", "RS256", "ES256"])
def test_a_token_minted_with_the_private_key_is_accepted_by_its_public_half(tmp_path, algorithm):
    key = private_key(algorithm)
    (tmp_path / "public.pem").write_bytes(public_pem(key))
    (tmp_path / "private.pem").write_bytes(key.private_bytes(*PRIVATE_PEM))
    auth = f"auth:\n  jwt_public_key: {tmp_path / 'public.pem'}\n  jwt_private_key: {tmp_path / 'private.pem'}\n"
    server = ServerProcess(config=auth + IDENTITY)
    try:
        server.wait_healthy()
        token = mint(server, "--sub", "ann", "--rooms", "team-*")
        assert jwt.get_unverified_header(token)["alg"] == algorithm
        assert request(f"{server.base_url}/api/rooms/team-x/messages", token)[0] == 200
    finally:
        server.stop()


def test_a_private_key_that_is_not_the_public_half_is_a_config_error(tmp_path):
    (tmp_path / "public.pem").write_bytes(public_pem(private_key("EdDSA")))
    (tmp_path / "private.pem").write_bytes(private_key("EdDSA").private_bytes(*PRIVATE_PEM))
    config = tmp_path / "rooms.yaml"
    config.write_text(
        f"auth:\n  jwt_public_key: {tmp_path / 'public.pem'}\n  jwt_private_key: {tmp_path / 'private.pem'}\n"
    )
    result = rooms("--config", str(config), "token", "--sub", "ann", cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "auth.jwt_private_key" in line and "not the private half" in line


@pytest.mark.parametrize(
    ("config", "args", "named"),
    [
        ("", ("--sub", "ann"), "auth.jwt_private_key"),
        (f"auth:\n  jwt_secret: {SECRET}\n", ("--sub", "ann", "--name", "a b\tc"), "claim 'name'"),
        (f"auth:\n  jwt_secret: {SECRET}\n", ("--sub", "ann", "--rooms", "te*am"), "claim 'rooms'"),
    ],
)
def test_token_refuses_what_the_server_would_refuse_in_one_line(tmp_path, config, args, named):
    (tmp_path / "rooms.yaml").write_text(config)
    result = rooms("--config", str(tmp_path / "rooms.yaml"), "token", *args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert named in line


@pytest.mark.parametrize("ttl", ["0s", "1w", "-1h", "1.5h", "h"])
def test_a_ttl_that_is_not_a_time_is_refused(tmp_path, ttl):
    result = rooms("token", "--sub", "ann", f"--ttl={ttl}", cwd=tmp_path)
    assert result.returncode == 2 and "is not a time such as 30s, 15m, 1h or 7d" in result.stderr


@pytest.mark.gen_test(timeout=30)
async def test_the_printed_invite_url_lets_its_holder_into_the_private_room(tmp_path):
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    server = ServerProcess(config=f"server:\n  public_url: {public_url}/\n{IDENTITY}", port=port)
    try:
        server.wait_healthy()
        assert request(f"{server.base_url}/team-a/")[0] == 404
        result = rooms("--config", config_of(server), "invite", "team-a", "--ttl", "1h", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        [url] = result.stdout.split()
        assert url.startswith(f"{public_url}/team-a/?invite=")
        assert request(url)[0] == 200
        code = url.rpartition("=")[2]
        assert request(f"{server.base_url}/team-b/?invite={quote(code)}")[0] == 404
        ws = await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{server.port}/chat/team-a/?invite={code}"))
        await send_json(ws, {"handle": "guest", "message": "thanks for the link"})
        assert (await receive_json(ws, timeout=10))["message"] == "thanks for the link"
        ws.close()
    finally:
        server.stop()


def test_invite_without_public_url_names_where_rooms_listens_and_says_so(tmp_path):
    (tmp_path / "rooms.yaml").write_text(f"server:\n  port: 8765\n{IDENTITY}")
    result = rooms("--config", str(tmp_path / "rooms.yaml"), "invite", "team-a", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("http://127.0.0.1:8765/team-a/?invite=")
    assert "server.public_url is not set" in result.stderr


def test_invite_to_a_room_that_is_not_private_says_anyone_may_enter_it(tmp_path):
    (tmp_path / "rooms.yaml").write_text(IDENTITY)
    result = rooms("--config", str(tmp_path / "rooms.yaml"), "invite", "lobby", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "lobby is not private" in result.stderr


def test_invite_without_a_shared_key_is_a_config_error(tmp_path):
    result = rooms("invite", "team-a", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "rooms.invite_secret" in line


@pytest.mark.parametrize(("label", "ttl"), [("no.such", "1h"), ("team-a", "91d")])
def test_invite_refuses_a_label_that_is_not_one_and_a_ttl_past_90_days(tmp_path, label, ttl):
    (tmp_path / "rooms.yaml").write_text(IDENTITY)
    result = rooms("--config", str(tmp_path / "rooms.yaml"), "invite", label, "--ttl", ttl, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""


def test_backup_and_restore_commands_copy_the_sqlite_database(tmp_path):
    server = ServerProcess(f"sqlite:///{tmp_path / 'rooms.db'}")
    try:
        server.wait_healthy()
        assert request(f"{server.base_url}/api/rooms/lobby/messages", body={"handle": "a", "message": "kept"})[0] == 201
        backed = rooms("backup", str(tmp_path / "copy.db"), "--backend", "sqlite:///rooms.db", cwd=tmp_path)
        assert backed.returncode == 0, backed.stderr
    finally:
        server.stop()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    restored = rooms("--backend", "sqlite:///rooms.db", "restore", str(tmp_path / "copy.db"), cwd=fresh)
    assert restored.returncode == 0, restored.stderr
    server = ServerProcess(f"sqlite:///{fresh / 'rooms.db'}")
    try:
        server.wait_healthy()
        status, page = request(f"{server.base_url}/api/rooms/lobby/messages")
        assert status == 200 and [m["message"] for m in page["messages"]] == ["kept"]
    finally:
        server.stop()


def test_an_earlier_flag_and_a_command_together_are_refused(tmp_path):
    result = rooms("--check-config", "token", "--sub", "ann", cwd=tmp_path)
    assert result.returncode == 2 and "give one" in result.stderr
