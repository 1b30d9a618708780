"""The ``rooms`` command's arguments: ``rooms [serve]``, ``check-config``, ``token``, ``invite``,
``backup``, ``restore`` and ``--version``; ``python server.py`` and the one-file app take the same.

The flags of earlier releases (``--check-config``, ``--backup PATH``, ``--restore PATH``) still work: they
become the command of the same name. ``--config``, ``--host``, ``--port`` and ``--backend`` may come before
the command or after it.
"""

from __future__ import annotations

import argparse
import re

from rooms.access.invites import DEFAULT_SECONDS as INVITE_SECONDS
from rooms.access.invites import MAX_SECONDS as MAX_INVITE_SECONDS
from rooms.protocol import is_valid_label
from rooms.service.version import rooms_version

SERVE = "serve"
CHECK_CONFIG = "check-config"
TOKEN = "token"
INVITE = "invite"
BACKUP = "backup"
RESTORE = "restore"
TOKEN_SECONDS = 3600
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TTL = re.compile(r"([1-9][0-9]{0,8})([smhd])")


def parse_ttl(text: str) -> int:
    """``30s``, ``15m``, ``1h``, ``7d``: a time to live in seconds."""
    match = _TTL.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time such as 30s, 15m, 1h or 7d")
    return int(match[1]) * _UNITS[match[2]]


def invite_ttl(text: str) -> int:
    seconds = parse_ttl(text)
    if seconds > MAX_INVITE_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than an invite may last ({MAX_INVITE_SECONDS // 86400}d)")
    return seconds


def room_label(text: str) -> str:
    if not is_valid_label(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a room label (letters, digits, - and _, up to 50)")
    return text


class _Version(argparse.Action):
    """``--version``, read only when asked (from a checkout, it runs git)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=str(kwargs.get("help")))

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"rooms {rooms_version()}")
        parser.exit()


def _where_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The options that say where the config is and override it. A command's copies default to nothing
    at all (SUPPRESS), so that one given before the command is not overwritten by its absence after it."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--config", metavar="PATH", default=default, help="YAML config file (default: config.yaml, or $ROOMS_CONFIG)"
    )
    parser.add_argument("--host", default=default, help="address to listen on (server.host)")
    parser.add_argument("--port", type=int, default=default, help="port to listen on (server.port)")
    parser.add_argument("--backend", metavar="URL", default=default, help="where messages live (backend.url)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rooms",
        description="A self-hosted real-time chat-room server. Without a command: serve.",
    )
    parser.add_argument("--version", action=_Version, help="print the version of rooms and exit")
    _where_options(parser, suppress=False)
    earlier = parser.add_argument_group("flags of earlier releases, the same as the commands")
    once = earlier.add_mutually_exclusive_group()
    once.add_argument("--check-config", action="store_true", help="the same as: rooms check-config")
    once.add_argument("--backup", metavar="PATH", help="the same as: rooms backup PATH")
    once.add_argument("--restore", metavar="PATH", help="the same as: rooms restore PATH")

    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(SERVE, help="run the server (the default)")
    _where_options(serve, suppress=True)

    check = commands.add_parser(
        CHECK_CONFIG,
        help="print the resolved config (secrets masked) and the file it came from; exit 2 naming a bad key",
    )
    _where_options(check, suppress=True)
    check.add_argument(
        "--connect",
        action="store_true",
        help="also reach the backend as the server would: exit 2 if it refuses (password, database, path), "
        "1 if it cannot be reached within backend.connect_timeout",
    )

    token = commands.add_parser(TOKEN, help="print a token signed with auth.jwt_secret or auth.jwt_private_key")
    _where_options(token, suppress=True)
    token.add_argument("--sub", required=True, help="who the token says the user is (its 'sub')")
    token.add_argument("--name", help="the handle their messages carry (default: the sub)")
    token.add_argument("--mod", action="store_true", help="a moderator in the rooms the token may enter")
    token.add_argument(
        "--rooms",
        action="append",
        metavar="PATTERNS",
        help="labels or 'prefix*' patterns it may enter, private ones too (comma-separated or repeated; "
        "default: every public room)",
    )
    token.add_argument(
        "--ttl", type=parse_ttl, default=TOKEN_SECONDS, help="how long it is valid: 30s, 15m, 1h (default), 7d"
    )

    invite = commands.add_parser(INVITE, help="print an invite URL to a private room")
    _where_options(invite, suppress=True)
    invite.add_argument("label", type=room_label, help="the room")
    invite.add_argument(
        "--ttl", type=invite_ttl, default=INVITE_SECONDS, help="how long it is valid: 1h, 7d (default), up to 90d"
    )

    backup = commands.add_parser(BACKUP, help="copy the SQLite database to PATH (rooms may run)")
    _where_options(backup, suppress=True)
    backup.add_argument("path", metavar="PATH")
    restore = commands.add_parser(RESTORE, help="put the backup at PATH in place (rooms stopped)")
    _where_options(restore, suppress=True)
    restore.add_argument("path", metavar="PATH")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The arguments, with ``command`` always set (an earlier release's flag becomes its command)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    earlier = CHECK_CONFIG if args.check_config else BACKUP if args.backup else RESTORE if args.restore else None
    if earlier is not None and args.command is not None:
        parser.error(f"--{earlier} and the command {args.command} are two things to do; give one")
    if earlier is not None:
        args.command = earlier
        args.path = args.backup or args.restore
        args.connect = False
    if args.command is None:
        args.command = SERVE
    if args.command == TOKEN:
        args.rooms = None if args.rooms is None else [room for given in args.rooms for room in given.split(",") if room]
    return args
