"""The proxy recipes of docs/proxy/, each run for real in front of rooms: nginx for one process and for
several (on Redis), and Caddy. Each is the recipe file's own text with only its listen ports, upstream
addresses and TLS swapped (tests/support/proxies.py).

The client connects to the proxy from 127.0.0.5 (and floods from 127.0.0.9), while the proxy reaches rooms
from 127.0.0.1, the only address rooms trusts here: so an address in rooms' log is the one the proxy saw."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.factories import service_unreachable
from tests.support.processes import ServerProcess, free_port
from tests.support.proxies import (
    RECIPES,
    SITE,
    ProxyProcess,
    WebSocketClient,
    http_request,
    render_caddyfile,
    render_nginx,
    self_signed_certificate,
    start_caddy,
    start_nginx,
)
from tests.support.redis import REDIS_URL, delete_prefix, prefixed_url, unique_prefix

CLIENT = "127.0.0.5"
FLOODER = "127.0.0.9"
# Only the proxy is trusted: a client on another loopback address is a client like any on the internet.
ROOMS_CONFIG = 'server:\n  trusted_proxies: ["127.0.0.1/32"]\n'
# limits.max_frame_bytes is 64 KiB; the recipes refuse more.
TOO_BIG = b'{"handle": "ann", "message": "' + b"x" * 70_000 + b'"}'
NGINX_RECIPES = ["nginx-one-process.conf", "nginx-several-processes.conf"]
ALL_RECIPES = [*NGINX_RECIPES, "Caddyfile"]


@dataclass
class Deployment:
    recipe: str
    proxy: ProxyProcess
    servers: list[ServerProcess]
    # The recipe's upstream ports -> the test's rooms processes' ports.
    upstreams: dict[int, int]

    @property
    def port(self) -> int:
        return self.proxy.port

    def rooms_log(self) -> str:
        return "".join(server.log() for server in self.servers)


@pytest.fixture(scope="module")
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    recipe: str = request.param
    recipe_text = (RECIPES / recipe).read_text()
    directory = tmp_path_factory.mktemp(recipe.replace(".", "-"))
    several = "several" in recipe
    prefix = unique_prefix()
    if several:
        _require_redis()
        servers = [ServerProcess(prefixed_url(REDIS_URL, prefix), config=ROOMS_CONFIG) for _ in range(2)]
        # The recipe's four processes are played by two, each taking two of its upstream lines.
        upstreams = {8001: servers[0].port, 8002: servers[1].port, 8003: servers[0].port, 8004: servers[1].port}
    else:
        servers = [ServerProcess(config=ROOMS_CONFIG)]
        upstreams = {8000: servers[0].port}
    proxy: ProxyProcess | None = None
    try:
        for server in servers:
            server.wait_healthy()
        port = free_port()
        if recipe.startswith("nginx"):
            proxy = start_nginx(directory, render_nginx(recipe_text, port, free_port(), upstreams), port)
        else:
            proxy = start_caddy(directory, render_caddyfile(recipe_text, port, upstreams), port)
        yield Deployment(recipe, proxy, servers, upstreams)
    finally:
        if proxy is not None:
            proxy.stop()
        for server in servers:
            server.stop()
        if several:
            asyncio.run(delete_prefix(REDIS_URL, prefix))


def _require_redis() -> None:
    address = urlsplit(REDIS_URL)
    try:
        socket.create_connection((address.hostname or "127.0.0.1", address.port or 6379), timeout=2).close()
    except OSError as exc:
        service_unreachable(f"Redis at {REDIS_URL}", str(exc))


def _label() -> str:
    return f"proxied-{uuid.uuid4().hex[:10]}"


def _wait_for_log(deployment: Deployment, text: str) -> str:
    """rooms' log once a line holding ``text`` is in it (a request's access line follows its answer)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log = deployment.rooms_log()
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} is not in rooms' log:\n{deployment.rooms_log()}")


@pytest.mark.parametrize("deployment", ALL_RECIPES, indirect=True)
def test_the_room_page_and_its_socket_work_through_the_proxy(deployment: Deployment) -> None:
    label = _label()
    status, page = http_request(deployment.port, "GET", f"/{label}/", CLIENT)
    assert status == 200 and label.encode() in page, page[:300]
    socket_client = WebSocketClient(deployment.port, f"/chat/{label}/", CLIENT)
    try:
        socket_client.send_json({"handle": "ann", "message": "through the proxy"})
        echoed = socket_client.receive_json()
        assert (echoed["type"], echoed["room"], echoed["message"]) == ("message", label, "through the proxy")
        # A message posted through the proxy (to any process behind it) reaches the socket.
        body = b'{"handle": "bob", "message": "posted through the proxy"}'
        status, _ = http_request(
            deployment.port,
            "POST",
            f"/api/rooms/{label}/messages",
            CLIENT,
            body=body,
            headers={"Content-Type": "application/json"},
        )
        assert status == 201
        posted = socket_client.receive_json()
        assert (posted["handle"], posted["message"]) == ("bob", "posted through the proxy")
    finally:
        socket_client.close()


@pytest.mark.parametrize("deployment", ALL_RECIPES, indirect=True)
def test_rooms_logs_the_client_address_the_proxy_saw_not_one_the_client_claims(deployment: Deployment) -> None:
    label = _label()
    # A client that names another address itself: the recipe must not let it choose its address in rooms.
    claimed = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}
    status, _ = http_request(deployment.port, "GET", f"/{label}/", CLIENT, headers=claimed)
    assert status == 200
    socket_client = WebSocketClient(deployment.port, f"/chat/{label}/", CLIENT)
    socket_client.close()
    log = _wait_for_log(deployment, f"/chat/{label}/")
    # rooms' peer is the proxy (127.0.0.1): the client's address can only have come from the proxy's header.
    with_client = [line for line in log.splitlines() if label in line and CLIENT in line]
    assert any(f"/chat/{label}/" in line for line in with_client), log
    assert any(f"/{label}/" in line and "/chat/" not in line for line in with_client), log
    assert "203.0.113.9" not in log


@pytest.mark.parametrize("deployment", ALL_RECIPES, indirect=True)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_the_limit_gets_413_from_the_proxy(deployment: Deployment, framing: str) -> None:
    label = _label()
    headers = {"Content-Type": "application/json"}
    body: bytes | Iterator[bytes] = TOO_BIG
    if framing == "chunked":  # http.client sends an iterable body chunked, with no Content-Length
        body = iter([TOO_BIG[:30_000], TOO_BIG[30_000:]])
    status, _ = http_request(
        deployment.port, "POST", f"/api/rooms/{label}/messages", CLIENT, body=body, headers=headers
    )
    assert status == 413
    if deployment.recipe.startswith("nginx"):
        # nginx refuses it before it reaches rooms: a request sent after it is logged, it is not.
        marker = _label()
        assert http_request(deployment.port, "GET", f"/{marker}/", CLIENT)[0] == 200
        assert f"/api/rooms/{label}/" not in _wait_for_log(deployment, f"/{marker}/")


@pytest.mark.parametrize("deployment", NGINX_RECIPES, indirect=True)
def test_a_flood_from_one_address_gets_429_from_nginx_and_others_are_served(deployment: Deployment) -> None:
    # The recipe allows an address 20 requests a second after a burst of 60. Eight at a time, 400 requests
    # outrun that however slowly this machine answers each (up to 0.4 s). rooms answers /healthz 200 at any
    # rate, so a 429 is nginx's.
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: http_request(deployment.port, "GET", "/healthz", FLOODER), range(400)))
    statuses = [status for status, _ in answers]
    assert set(statuses) == {200, 429} and statuses.count(200) > 60, statuses
    assert http_request(deployment.port, "GET", "/healthz", CLIENT)[0] == 200


@pytest.mark.parametrize("deployment", NGINX_RECIPES, indirect=True)
def test_the_nginx_recipes_serve_tls_and_http2_as_written_and_redirect_http(deployment: Deployment, tmp_path) -> None:
    # The listen line as the recipe has it (ssl http2, which nginx 1.22 takes), with a certificate of the test's.
    certificate, key = self_signed_certificate(tmp_path)
    port, redirect_port = free_port(), free_port()
    recipe_text = (RECIPES / deployment.recipe).read_text()
    site = render_nginx(recipe_text, port, redirect_port, deployment.upstreams, tls=(certificate, key))
    (tmp_path / "nginx").mkdir()
    proxy = start_nginx(tmp_path / "nginx", site, port)
    try:
        context = ssl.create_default_context(cafile=str(certificate))
        context.set_alpn_protocols(["h2"])
        with (
            socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(CLIENT, 0)) as raw,
            context.wrap_socket(raw, server_hostname=SITE) as secured,
        ):
            assert secured.selected_alpn_protocol() == "h2"
        context.set_alpn_protocols(["http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(CLIENT, 0)) as raw,
            context.wrap_socket(raw, server_hostname=SITE) as secured,
        ):
            secured.sendall(f"GET /healthz HTTP/1.1\r\nHost: {SITE}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := secured.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in answer, answer[:300]
        assert http_request(redirect_port, "GET", "/lobby/", CLIENT)[0] == 301
    finally:
        proxy.stop()


def test_every_recipe_file_is_tested() -> None:
    assert sorted(path.name for path in Path(RECIPES).iterdir()) == sorted(ALL_RECIPES)
