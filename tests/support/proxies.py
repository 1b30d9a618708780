"""The reverse-proxy recipes of docs/proxy/ run for real: nginx and Caddy as processes of the test's own on
free loopback ports, each from its recipe's text with only the listen ports, the upstream addresses and TLS
swapped; and a client that connects from an address of its choosing, so the test can tell the client's
address from the proxy's."""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.processes import ROOT

RECIPES = Path(ROOT) / "docs" / "proxy"
STARTUP_SECONDS = 20
# The name the recipes serve; the client sends it as Host.
SITE = "chat.example.org"


def proxy_tool(name: str) -> str:
    """The proxy's program: missing, it fails the test under CI and skips it elsewhere."""
    found = shutil.which(name) or next(
        (path for path in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(path, os.X_OK)), None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing; .ci/run installs Debian's {name} package", pytrace=False)
        pytest.skip(f"{name} is not installed (apt-get install {name})")
    return found


def render_nginx(
    recipe: str, port: int, redirect_port: int, upstream_ports: dict[int, int], tls: tuple[Path, Path] | None = None
) -> str:
    """The recipe with its HTTPS listener on ``port``, its HTTP one on ``redirect_port``, and each upstream
    port of the recipe (8000, 8001, ...) mapped to a port of the test's rooms processes. TLS is off, unless
    ``tls`` names a certificate and its key to use in place of the recipe's."""
    listen = rf"\1listen 127.0.0.1:{port} ssl http2;" if tls else rf"\1listen 127.0.0.1:{port};"
    text, swaps = re.subn(r"(?m)^(\s*)listen 443 ssl http2;$", listen, recipe)
    assert swaps == 1, "the recipe's HTTPS listener is not where the test expects it"
    text, swaps = re.subn(r"(?m)^(\s*)listen 80;$", rf"\1listen 127.0.0.1:{redirect_port};", text)
    assert swaps == 1, "the recipe's HTTP listener is not where the test expects it"
    if tls:
        text, swaps = re.subn(r"(?m)^(\s*ssl_certificate\s+)\S+;$", rf"\g<1>{tls[0]};", text)
        text, key_swaps = re.subn(r"(?m)^(\s*ssl_certificate_key\s+)\S+;$", rf"\g<1>{tls[1]};", text)
        assert swaps == key_swaps == 1, "the recipe's certificate is not where the test expects it"
    else:
        text = re.sub(r"(?m)^\s*ssl_certificate(_key)? .*\n", "", text)
    return _swap_upstreams(text, upstream_ports)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for the site's name, signed by its own key: the paths of both, in PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SITE)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SITE)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_path, key_path


def render_caddyfile(recipe: str, port: int, upstream_ports: dict[int, int]) -> str:
    """The recipe served over plain HTTP on ``port`` (no certificate to get), without Caddy's admin API."""
    text, swaps = re.subn(rf"(?m)^{re.escape(SITE)} {{$", f"http://{SITE}:{port} {{", recipe)
    assert swaps == 1, "the recipe's site address is not where the test expects it"
    return "{\n    admin off\n    default_bind 127.0.0.1\n}\n\n" + _swap_upstreams(text, upstream_ports)


def _swap_upstreams(text: str, upstream_ports: dict[int, int]) -> str:
    """Each upstream address on a line that is not a comment swapped for the test's."""

    def swap(match: re.Match[str]) -> str:
        return f"127.0.0.1:{upstream_ports[int(match.group(1))]}"

    lines = text.splitlines(keepends=True)
    swapped = [
        line if line.lstrip().startswith("#") else re.sub(r"127\.0\.0\.1:(80\d\d)\b", swap, line) for line in lines
    ]
    assert swapped != lines, "the recipe names no upstream on 127.0.0.1"
    return "".join(swapped)


class ProxyProcess:
    """A proxy started from a rendered recipe in ``directory``; ``stop()`` ends it."""

    def __init__(self, command: list[str], port: int, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{command[0]} exited with {self.process.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{command[0]} did not listen on {port}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


def start_nginx(directory: Path, site: str, port: int) -> ProxyProcess:
    """nginx in the foreground with ``site`` (a rendered recipe) as its http block's only server config;
    ``nginx -t`` must pass first."""
    nginx = proxy_tool("nginx")
    (directory / "rooms.conf").write_text(site)
    for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / temp).mkdir()
    # As root, the workers would run as nobody, who may not write this directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (directory / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n"
        "events {\n    worker_connections 1024;\n}\n"
        "http {\n"
        f"    access_log {directory}/access.log;\n"
        + "".join(
            f"    {temp}_temp_path {directory}/{temp};\n"
            for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"    include {directory}/rooms.conf;\n}}\n"
    )
    command = [nginx, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(directory / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"nginx -t:\n{checked.stderr}"
    return ProxyProcess(command, port, directory / "nginx.out")


def start_caddy(directory: Path, site: str, port: int) -> ProxyProcess:
    """Caddy with ``site`` (a rendered recipe) as its Caddyfile; ``caddy validate`` must pass first. Its
    storage and autosaved config stay in ``directory``."""
    caddy = proxy_tool("caddy")
    (directory / "Caddyfile").write_text(site)
    env = {**os.environ, "HOME": str(directory), "XDG_DATA_HOME": str(directory), "XDG_CONFIG_HOME": str(directory)}
    arguments = ["--config", str(directory / "Caddyfile"), "--adapter", "caddyfile"]
    checked = subprocess.run([caddy, "validate", *arguments], capture_output=True, text=True, timeout=60, env=env)
    assert checked.returncode == 0, f"caddy validate:\n{checked.stdout}{checked.stderr}"
    return ProxyProcess([caddy, "run", *arguments], port, directory / "caddy.out", env=env)


def http_request(
    port: int,
    method: str,
    path: str,
    source: str,
    body: bytes | Iterable[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request to the proxy on 127.0.0.1:``port`` from the address ``source``, for the site's name; an
    iterable ``body`` is sent chunked."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers={"Host": SITE, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class WebSocketClient:
    """A blocking WebSocket client from the address ``source``: text frames in JSON, masked as RFC 6455
    requires of a client."""

    def __init__(self, port: int, path: str, source: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {SITE}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, f"the proxy closed during the handshake: {head!r}"
            head += chunk
        assert head.split(b"\r\n")[0].split(b" ")[1] == b"101", head

    def send_json(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(data))
        length = struct.pack("!BH", 0x80 | 126, len(data)) if len(data) > 125 else bytes([0x80 | len(data)])
        self.sock.sendall(bytes([0x81]) + length + mask + masked)

    def receive_json(self) -> dict[str, Any]:
        """The next text frame (pings are answered by nobody here: the test is over long before one)."""
        opcode, length = self._exactly(2)
        length &= 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._exactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._exactly(8))
        payload = self._exactly(length)
        assert opcode & 0x0F == 0x1, f"not a text frame: opcode {opcode & 0x0F}, {payload!r}"
        frame: dict[str, Any] = json.loads(payload)
        return frame

    def _exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            assert chunk, "the socket closed"
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()
