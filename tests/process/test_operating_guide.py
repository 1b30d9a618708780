"""docs/operating.md's install steps hold: with step 2's config (``server.allowed_hosts`` set to the public
name), step 3's ``curl http://127.0.0.1:8000/healthz`` and a Prometheus scrape on the host are answered, while
a page asked for by that address is not."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from tests.support.processes import ROOT, ServerProcess, clean_environment, run_server

GUIDE = os.path.join(ROOT, "docs", "operating.md")
STEP_2_CONFIG = 'server:\n  allowed_hosts: ["chat.example.org"]\n'


def status_of(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def test_with_allowed_hosts_set_a_monitor_on_the_host_gets_healthz_and_metrics_by_address():
    with open(GUIDE, encoding="utf-8") as handle:
        guide = handle.read()
    assert "allowed_hosts" in guide and "curl -s http://127.0.0.1:8000/healthz" in guide
    server = ServerProcess(config=STEP_2_CONFIG)
    try:
        server.wait_healthy()
        status, body = status_of(f"{server.base_url}/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, body = status_of(f"{server.base_url}/metrics")
        assert status == 200 and b"# TYPE" in body
        # Only those two: a page asked for by address is refused (DNS rebinding).
        assert status_of(f"{server.base_url}/lobby/")[0] == 400
    finally:
        assert server.stop() == 0


def test_secrets_from_credential_files_reach_the_server_and_a_missing_one_stops_it_with_exit_2(tmp_path):
    # As systemd hands them over: one file each in the credentials directory, named by the _FILE variables.
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    token = "a-moderator-token-from-a-credential-0123456789"
    (credentials / "moderator_token").write_text(token + "\n")
    (credentials / "invite_secret").write_text("an-invite-secret-from-a-credential-0123456789\n")
    environment = {
        "ROOMS_MODERATOR_TOKEN_FILE": str(credentials / "moderator_token"),
        "ROOMS_INVITE_SECRET_FILE": str(credentials / "invite_secret"),
    }
    server = ServerProcess(config=STEP_2_CONFIG, environment=environment)
    try:
        server.wait_healthy()
        request = urllib.request.Request(
            f"{server.base_url}/api/bans", headers={"Host": "chat.example.org", "Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        assert token not in server.log()
    finally:
        assert server.stop() == 0

    missing = str(credentials / "jwt_secret")
    result = run_server(env=clean_environment(ROOMS_JWT_SECRET_FILE=missing))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "auth.jwt_secret_file" in line and "ROOMS_JWT_SECRET_FILE" in line and missing in line, line
