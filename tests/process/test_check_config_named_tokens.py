"""``server.py --check-config`` with named moderator tokens: each name shown, every token masked, and a bad
entry named in one line without its token."""

from __future__ import annotations

import yaml

from tests.support.processes import run_server
from tests.support.tokens import MODERATOR_TOKEN

ALICE = "alice-moderator-token-0123456789abcdef"


def test_check_config_shows_names_and_masks_every_token():
    config = f"moderation:\n  tokens:\n    - {MODERATOR_TOKEN}\n    - {{name: alice, token: {ALICE}}}\n"
    result = run_server("--check-config", config=config)
    assert result.returncode == 0, result.stderr
    assert MODERATOR_TOKEN not in result.stdout and ALICE not in result.stdout
    shown = yaml.safe_load(result.stdout[result.stdout.index("server:") :])
    assert shown["moderation"]["tokens"] == ["********", {"name": "alice", "token": "********"}]


def test_check_config_names_a_bad_entry_in_one_line_without_its_token():
    config = f"moderation:\n  tokens:\n    - {MODERATOR_TOKEN}\n    - {{name: alice, tokn: {ALICE}}}\n"
    result = run_server("--check-config", config=config)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "moderation.tokens: entry 2: unknown key 'tokn'" in line and ALICE not in line
