"""Config loading: defaults, file, environment and flag overrides, and every kind of error."""

from __future__ import annotations

import os
from dataclasses import fields

import pytest
import yaml

from rooms.config.loading import config_file, load_config
from rooms.config.masking import MASK, describe
from rooms.errors import ConfigError
from tests.support.tokens import MODERATOR_TOKEN, SECRET, pem_file, private_key, public_pem


def write(tmp_path, text: str) -> str:
    path = tmp_path / "rooms.yaml"
    path.write_text(text)
    return str(path)


def config_error(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(*args, **kwargs)
    return str(caught.value)


def test_defaults_match_the_protocol(tmp_path):
    config = load_config(write(tmp_path, ""), environ={})
    assert (config.server.host, config.server.port, config.server.allowed_origins) == ("127.0.0.1", 8000, [])
    assert (config.backend.url, config.backend.connect_timeout) == ("sqlite:///rooms.db", 10)
    assert (config.history.page_size, config.history.retain_per_room) == (50, 10000)
    limits = config.limits
    assert (limits.max_handle_chars, limits.max_message_chars, limits.max_frame_bytes) == (32, 4000, 65536)
    assert (limits.messages_per_second, limits.burst, limits.send_buffer_bytes) == (5, 20, 1048576)
    assert (limits.connections_per_address, limits.new_rooms_per_hour) == (50, 60)
    assert (limits.address_rate, limits.address_bucket) == (20, 60)  # 4 x and 3 x the per-connection limit
    assert config.history.expire_after_days == 0
    assert (config.server.allowed_hosts, config.server.trusted_proxies) == ([], ["127.0.0.1/8", "::1"])
    assert config.server.metrics_allowed == ["127.0.0.1/8", "::1"]
    assert config.server.client_address_header == "x-forwarded-for"
    assert (limits.ipv6_56_factor, limits.ipv6_48_factor) == (4, 16)


def test_address_limits_follow_the_connection_limits_unless_set(tmp_path):
    derived = load_config(write(tmp_path, "limits:\n  messages_per_second: 2\n  burst: 5\n"), environ={})
    assert (derived.limits.address_rate, derived.limits.address_bucket) == (8, 15)
    text = "limits:\n  burst: 5\n  address_messages_per_second: 1\n  address_burst: 7\n"
    chosen = load_config(write(tmp_path, text), environ={})
    assert (chosen.limits.address_rate, chosen.limits.address_bucket) == (1, 7)
    quota = chosen.backend_options().quota
    assert quota is not None and (quota.messages_per_second, quota.burst, quota.new_rooms_per_hour) == (1, 7, 60)


def test_the_ipv6_factors_reach_the_rate_policy_s_blocks_and_the_backend_s_quota(tmp_path):
    text = "limits:\n  ipv6_56_factor: 2\n  ipv6_48_factor: 8\nserver:\n  client_address_header: X-Real-IP\n"
    config = load_config(write(tmp_path, text), environ={})
    assert config.server.client_address_header == "x-real-ip"
    blocks = config.limits.address_blocks
    assert (blocks.ipv6_56_factor, blocks.ipv6_48_factor) == (2, 8)
    quota = config.backend_options().quota
    assert quota is not None and quota.blocks == blocks


def test_shipped_config_yaml_lists_every_key_with_its_default():
    with open("config.yaml", encoding="utf-8") as handle:
        shipped = yaml.safe_load(handle)
    defaults = load_config(os.devnull, environ={})
    for section, cls in (
        ("server", type(defaults.server)),
        ("backend", type(defaults.backend)),
        ("history", type(defaults.history)),
        ("limits", type(defaults.limits)),
        ("auth", type(defaults.auth)),
        ("rooms", type(defaults.rooms)),
        ("moderation", type(defaults.moderation)),
    ):
        assert set(shipped[section]) == {field.name for field in fields(cls)}, section
        for key, value in shipped[section].items():
            assert getattr(getattr(defaults, section), key) == value, f"{section}.{key}"
    assert shipped["backend"]["url"] == "sqlite:///rooms.db"


def test_file_values_are_used(tmp_path):
    path = write(
        tmp_path, "server:\n  port: 9001\n  allowed_origins: [https://chat.example.com]\nlimits:\n  burst: 3\n"
    )
    config = load_config(path, environ={})
    assert config.server.port == 9001 and config.limits.burst == 3
    assert config.server.allowed_origins == ["https://chat.example.com"]


def test_environment_overrides_file_and_flags_override_environment(tmp_path):
    path = write(tmp_path, "server:\n  port: 9001\n  host: 0.0.0.0\n")
    environ = {"ROOMS_PORT": "9002", "ROOMS_HOST": "::1", "ROOMS_BACKEND_URL": "memory://"}
    config = load_config(path, environ=environ)
    assert (config.server.port, config.server.host, config.backend.url) == (9002, "::1", "memory://")
    config = load_config(path, environ=environ, overrides={"server.port": 9003, "server.host": None})
    assert (config.server.port, config.server.host) == (9003, "::1")


@pytest.mark.parametrize(
    ("text", "environ", "overrides", "key"),
    [
        ("server:\n  port: abc\n", {}, {"server.port": 9005}, "server.port"),
        ("server:\n  port: abc\n", {"ROOMS_PORT": "9005"}, {}, "server.port"),
        ("backend:\n  url: ftp://x\n", {}, {"backend.url": "memory://"}, "backend.url"),
    ],
)
def test_a_wrong_key_in_the_file_is_an_error_even_when_overridden(tmp_path, text, environ, overrides, key):
    assert key in config_error(write(tmp_path, text), environ=environ, overrides=overrides)


def test_rooms_config_variable_names_the_file(tmp_path):
    path = write(tmp_path, "server:\n  port: 9004\n")
    assert load_config(None, environ={"ROOMS_CONFIG": path}).server.port == 9004


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("server:\n  hots: x\n", "server.hots"),
        ("servers:\n  host: x\n", "servers"),
        ("server:\n  port: eighty\n", "server.port"),
        ("server:\n  port: true\n", "server.port"),
        ("server:\n  port: 70000\n", "server.port"),
        ("server:\n  allowed_origins: https://x\n", "server.allowed_origins"),
        ("backend:\n  url: ftp://x\n", "backend.url"),
        ("backend:\n  url: 5\n", "backend.url"),
        ("backend:\n  connect_timeout: soon\n", "backend.connect_timeout"),
        ("history:\n  page_size: 0\n", "history.page_size"),
        ("history:\n  retain_per_room: -1\n", "history.retain_per_room"),
        ("limits:\n  burst: 1.5\n", "limits.burst"),
        ("limits:\n  messages_per_second: fast\n", "limits.messages_per_second"),
        ("limits: 7\n", "limits"),
        ("server:\n  log_level: loud\n", "server.log_level"),
        ("server:\n  event_loop: trio\n", "server.event_loop"),
        ("server:\n  allocator: tcmalloc\n", "server.allocator"),
        ("server:\n  log_format: xml\n", "server.log_format"),
        ("server:\n  ping_interval: -1\n", "server.ping_interval"),
        ("server:\n  shutdown_grace: later\n", "server.shutdown_grace"),
        ("backend:\n  sqlite_synchronous: always\n", "backend.sqlite_synchronous"),
        ("server:\n  client_address_header: forwarded\n", "server.client_address_header"),
        ("server:\n  client_address_header: ''\n", "server.client_address_header"),
        ("limits:\n  ipv6_56_factor: 0\n", "limits.ipv6_56_factor"),
        ("limits:\n  ipv6_48_factor: 2.5\n", "limits.ipv6_48_factor"),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, named):
    assert named in config_error(write(tmp_path, text), environ={})


def test_bad_port_in_environment_names_the_key(tmp_path):
    message = config_error(write(tmp_path, ""), environ={"ROOMS_PORT": "http"})
    assert "server.port" in message and "ROOMS_PORT" in message


def test_unknown_backend_scheme_from_environment(tmp_path):
    assert "backend.url" in config_error(write(tmp_path, ""), environ={"ROOMS_BACKEND_URL": "mongodb://x"})


def test_unreadable_file_and_bad_yaml_are_config_errors(tmp_path):
    assert "cannot read" in config_error(str(tmp_path / "missing.yaml"), environ={})
    path = write(tmp_path, "server: [unclosed\n")
    assert (
        config_error(path, environ={})
        == f"config: {path} line 2, column 1: expected ',' or ']', but got '<stream end>'"
    )
    assert "mapping" in config_error(write(tmp_path, "- a list\n"), environ={})


def test_a_yaml_error_names_the_line_and_column_of_the_problem(tmp_path):
    text = "server:\n  port: 8000\n  host: 127.0.0.1\nbackend:\n  url: memory://\nlimits:\n  burst: 5\n   page: 3\n"
    path = write(tmp_path, text)
    assert config_error(path, environ={}) == f"config: {path} line 8, column 8: mapping values are not allowed here"


def test_the_file_read_is_the_one_given_else_rooms_config_else_config_yaml_if_there_is_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_file(None, {}) is None
    assert config_file(None, {"ROOMS_CONFIG": "/etc/rooms/rooms.yaml"}) == "/etc/rooms/rooms.yaml"
    (tmp_path / "config.yaml").write_text("")
    assert config_file(None, {}) == "config.yaml"
    assert config_file("other.yaml", {"ROOMS_CONFIG": "/etc/rooms/rooms.yaml"}) == "other.yaml"


def test_public_url_is_an_http_address_kept_without_its_last_slash(tmp_path):
    config = load_config(write(tmp_path, "server:\n  public_url: https://chat.example.org/\n"), environ={})
    assert config.server.public_url == "https://chat.example.org"
    for bad in ("chat.example.org", "ftp://chat.example.org", "https://chat.example.org/?a=b", "https://x:port"):
        assert "server.public_url" in config_error(write(tmp_path, f"server:\n  public_url: {bad}\n"), environ={})


# -- identity, private rooms, moderation ---------------------------------------------------------------


def test_identity_defaults_are_open_with_no_private_rooms(tmp_path):
    config = load_config(write(tmp_path, ""), environ={})
    assert (config.auth.mode, config.auth.jwt_secret, config.auth.jwt_public_key, config.auth.jwt_audience) == (
        "open",
        "",
        "",
        "",
    )
    assert (config.rooms.private, config.rooms.invite_secret, config.moderation.tokens) == ([], "", [])


def test_secrets_come_from_the_environment_and_the_moderator_token_adds_to_the_list(tmp_path):
    path = write(tmp_path, f"auth:\n  mode: token\nmoderation:\n  tokens: [{MODERATOR_TOKEN}]\n")
    environ = {"ROOMS_JWT_SECRET": SECRET, "ROOMS_INVITE_SECRET": "i" * 40, "ROOMS_MODERATOR_TOKEN": "e" * 32}
    config = load_config(path, environ=environ)
    assert (config.auth.mode, config.auth.jwt_secret, config.rooms.invite_secret) == ("token", SECRET, "i" * 40)
    assert [entry.token for entry in config.moderation.tokens] == [MODERATOR_TOKEN, "e" * 32]


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_a_pem_public_key_is_taken(tmp_path, algorithm):
    path = pem_file(tmp_path, public_pem(private_key(algorithm)))
    config = load_config(write(tmp_path, f"auth:\n  mode: token\n  jwt_public_key: {path}\n"), environ={})
    assert config.auth.jwt_public_key == path


def test_identity_config_errors_name_the_key(tmp_path):
    garbage = pem_file(tmp_path, b"-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    cases = [
        ("auth:\n  mode: token\n", "auth.mode"),
        ("auth:\n  mode: sometimes\n", "auth.mode"),
        (f"auth:\n  jwt_secret: {SECRET}\n  jwt_public_key: {garbage}\n", "auth.jwt_public_key"),
        (f"auth:\n  jwt_public_key: {tmp_path / 'missing.pem'}\n", "auth.jwt_public_key"),
        (f"auth:\n  jwt_public_key: {garbage}\n", "auth.jwt_public_key"),
        ("auth:\n  jwt_secret: short\n", "auth.jwt_secret"),
        ("moderation:\n  tokens: [too-short]\n", "moderation.tokens"),
        ("moderation:\n  tokens: hunter2hunter2hunter2hunter2hunter2\n", "moderation.tokens"),
        ("rooms:\n  private: ['a*b']\n", "rooms.private"),
        ("rooms:\n  private: ['*team']\n", "rooms.private"),
        ("rooms:\n  private: [bad.label]\n", "rooms.private"),
        ("rooms:\n  private: ['']\n", "rooms.private"),
        ("rooms:\n  private: team-*\n", "rooms.private"),
    ]
    for text, named in cases:
        message = config_error(write(tmp_path, text), environ={})
        assert message.startswith(named), (text, message)
        assert "hunter2" not in message and "too-short" not in message  # a secret is never shown


def test_a_short_moderator_token_in_the_environment_is_an_error(tmp_path):
    message = config_error(write(tmp_path, ""), environ={"ROOMS_MODERATOR_TOKEN": "tiny-token-value"})
    assert "moderation.tokens" in message and "ROOMS_MODERATOR_TOKEN" in message
    assert "tiny-token-value" not in message


def test_token_mode_with_the_secret_from_the_environment_is_no_error(tmp_path):
    path = write(tmp_path, "auth:\n  mode: token\n")
    assert load_config(path, environ={"ROOMS_JWT_SECRET": SECRET}).auth.mode == "token"


def test_describe_masks_every_secret(tmp_path):
    text = f"auth:\n  jwt_secret: {SECRET}\nrooms:\n  invite_secret: {'i' * 40}\n  private: [team-*]\n"
    environ = {"ROOMS_MODERATOR_TOKEN": MODERATOR_TOKEN}
    described = describe(load_config(write(tmp_path, text), environ=environ))
    assert SECRET not in described and "i" * 40 not in described and MODERATOR_TOKEN not in described
    shown = yaml.safe_load(described)
    assert shown["auth"]["jwt_secret"] == shown["rooms"]["invite_secret"] == MASK
    assert shown["moderation"]["tokens"] == [MASK]
    assert shown["rooms"]["private"] == ["team-*"]
