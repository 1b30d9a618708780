"""Start rooms: ``rooms [serve] [--config PATH] [--host H] [--port N] [--backend URL]``, the same as
``python server.py``; ``rooms check-config``, ``token``, ``invite``, ``backup`` and ``restore`` do one thing
and exit instead. The command itself, its exit statuses and the server: rooms/service/serving.py.

Only the allocator is settled here, before Tornado and the rest of rooms are imported: it may execute the
process again (rooms/service/allocator.py), and what was imported before that would be imported twice.
"""

from __future__ import annotations

import os
import sys

from rooms.service.allocator import use_configured_allocator


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the process's own command line, not a caller's arguments
        use_configured_allocator(sys.argv[1:], os.environ)
    from rooms.service.serving import main as run_command

    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
