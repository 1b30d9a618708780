"""Start rooms: ``rooms [serve] [--config PATH] [--host H] [--port N] [--backend URL]``, the same as
``python server.py``; ``rooms check-config``, ``token``, ``invite``, ``backup`` and ``restore`` do one thing
and exit instead. The command itself, its exit statuses and the server: rooms/service/serving.py.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from rooms.service.serving import main as run_command

    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
