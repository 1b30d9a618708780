"""``server.py --check-config``: what it prints of a good config (secrets masked) and the one line that names a
bad key."""

from __future__ import annotations

import pytest

from tests.support.processes import run_server
from tests.support.tokens import MODERATOR_TOKEN, pem_file, private_key, public_pem


def test_check_config_prints_the_identity_keys_with_secrets_masked(tmp_path):
    key = pem_file(tmp_path, public_pem(private_key("EdDSA")))
    config = (
        f"auth:\n  mode: token\n  jwt_public_key: {key}\n  jwt_audience: chat.example.org\n"
        f"rooms:\n  private: [team-*, hq]\n  invite_secret: {'i' * 40}\n"
        f"moderation:\n  tokens: [{MODERATOR_TOKEN}]\n"
    )
    result = run_server("--check-config", config=config)
    assert result.returncode == 0, result.stderr
    assert MODERATOR_TOKEN not in result.stdout and "i" * 40 not in result.stdout
    assert f"jwt_public_key: {key}" in result.stdout and "- team-*" in result.stdout


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ("auth:\n  mode: token\n", "auth.mode"),
        (f"moderation:\n  tokens: [{MODERATOR_TOKEN[:20]}]\n", "moderation.tokens"),
        ("rooms:\n  private: [te*am]\n", "rooms.private"),
        ("auth:\n  jwt_public_key: /nonexistent/key.pem\n", "auth.jwt_public_key"),
    ],
)
def test_check_config_exits_2_on_an_identity_error_in_one_line(config, named):
    result = run_server("--check-config", config=config)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert named in line and MODERATOR_TOKEN[:20] not in line


def test_check_config_exits_2_on_a_client_address_header_it_does_not_know_in_one_line():
    result = run_server("--check-config", config="server:\n  client_address_header: x-client-ip\n")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "server.client_address_header" in line and "x-forwarded-for" in line and "x-real-ip" in line
