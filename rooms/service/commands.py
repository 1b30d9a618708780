"""The ``rooms`` commands that start no server: ``check-config``, ``token`` and ``invite``. Each prints
what it made on stdout and returns the exit status; a config error is one line on stderr and status 2."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from urllib.parse import quote

from backends import create_backend
from backends.errors import BackendConfigError, BackendRefused, BackendUnavailable
from rooms.access.minting import make_invite, mint_token
from rooms.access.room_patterns import RoomPatterns
from rooms.access.tokens import InvalidToken
from rooms.config.masking import describe, mask_url
from rooms.config.model import Config
from rooms.errors import ConfigError
from rooms.service.startup import EXIT_CONFIG_ERROR, report_backend_failure, start_backend


def config_error(error: ConfigError | BackendConfigError) -> int:
    print(f"rooms: config error: {error}", file=sys.stderr)
    return EXIT_CONFIG_ERROR


def check_config(config: Config, source: str | None, connect: bool) -> int:
    """Print the resolved config, secrets masked, after the file it came from; with ``connect``, reach
    the backend as the server would and say so."""
    try:
        create_backend(config.backend_options())  # the backend's own options; connects to nothing
    except BackendConfigError as exc:
        return config_error(exc)
    if source is not None:
        print(f"# config file: {os.path.abspath(source)}")
    else:
        print(f"# no config file (no --config, no $ROOMS_CONFIG, no config.yaml in {os.getcwd()}): the defaults")
    print(describe(config), end="")
    if not connect:
        return 0
    try:
        asyncio.run(_reach_backend(config))
    except (BackendRefused, BackendUnavailable, BackendConfigError) as exc:
        return report_backend_failure(config, exc)
    print(f"# backend reached: {mask_url(config.backend.url)}")
    return 0


async def _reach_backend(config: Config) -> None:
    backend = await start_backend(config)
    try:
        await backend.health()
    finally:
        await backend.close()


def print_token(config: Config, args: argparse.Namespace) -> int:
    try:
        token = mint_token(config, args.sub, args.ttl, name=args.name, rooms=args.rooms, mod=args.mod)
    except ConfigError as exc:
        return config_error(exc)
    except InvalidToken as exc:
        # A claim given here that the server would refuse: say so rather than print a token that fails.
        print(f"rooms: the server would refuse this token: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(token)
    return 0


def print_invite(config: Config, label: str, seconds: int) -> int:
    try:
        invite = make_invite(config, label, seconds)
    except ConfigError as exc:
        return config_error(exc)
    base = config.server.public_url
    if not base:
        host = config.server.host
        base = f"http://{f'[{host}]' if ':' in host else host}:{config.server.port}"
        print(f"rooms: server.public_url is not set; the link names {base}, where rooms listens", file=sys.stderr)
    print(f"{base}/{quote(label)}/?invite={invite.code}")
    if not RoomPatterns(config.rooms.private).matches(label):
        print(f"rooms: {label} is not private (rooms.private): anyone may enter it without the link", file=sys.stderr)
    print(f"rooms: valid until {invite.expires.isoformat()}", file=sys.stderr)
    return 0
