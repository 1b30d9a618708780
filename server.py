"""Start rooms: ``python server.py [--config PATH] [--host H] [--port N] [--backend URL]``.

``--backup PATH`` / ``--restore PATH`` copy the SQLite database out or back instead (backends/sql/backup.py).

Exit status: 0 after a clean shutdown (SIGTERM, SIGINT or SIGHUP), 1 when the backend cannot be reached within
``backend.connect_timeout`` (a service manager may restart it), 2 for a configuration error (no restart
mends it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
import time
from collections.abc import Callable

from backends import create_backend
from backends.base import Backend
from backends.errors import BackendConfigError, BackendUnavailable
from backends.sql import backup as sqlite_backup
from rooms.config.loading import load_config
from rooms.config.masking import describe
from rooms.config.model import Config
from rooms.errors import ConfigError
from rooms.service.logformat import configure_logging
from rooms.service.systemd import Notifier, listening_sockets
from rooms.web.app import make_app
from rooms.web.httpserver import make_http_server

log = logging.getLogger("rooms")

EXIT_BACKEND_UNREACHABLE = 1
EXIT_CONFIG_ERROR = 2
RETRY_PAUSE_SECONDS = 0.5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rooms", description="A self-hosted real-time chat-room server.")
    parser.add_argument("--config", metavar="PATH", help="YAML config file (default: config.yaml, or $ROOMS_CONFIG)")
    parser.add_argument("--host", help="address to listen on (server.host)")
    parser.add_argument("--port", type=int, help="port to listen on (server.port)")
    parser.add_argument("--backend", metavar="URL", help="where messages live (backend.url)")
    once = parser.add_mutually_exclusive_group()
    once.add_argument(
        "--check-config",
        action="store_true",
        help="print the resolved config (secrets masked) and exit 0, or exit 2 naming the bad key; starts nothing",
    )
    once.add_argument("--backup", metavar="PATH", help="copy the SQLite database to PATH (rooms may run); exit")
    once.add_argument("--restore", metavar="PATH", help="put the backup at PATH in place (rooms stopped); exit")
    return parser.parse_args(argv)


async def start_backend(config: Config) -> Backend:
    """Keep trying an unreachable backend for ``backend.connect_timeout`` seconds, then give up."""
    deadline = time.monotonic() + config.backend.connect_timeout
    while True:
        backend = create_backend(config.backend_options())
        try:
            await backend.start()
            return backend
        except BackendUnavailable as exc:
            await backend.close()
            if time.monotonic() >= deadline:
                raise
            # Debug only: the contract is one line on stderr when the server gives up.
            log.debug("backend not reachable yet (%s); retrying", exc)
            await asyncio.sleep(RETRY_PAUSE_SECONDS)


async def serve(config: Config) -> None:
    systemd = Notifier()
    backend = await start_backend(config)
    app = make_app(config, backend)
    await app.hub.load_moderation()  # bans and locks hold from the first request on
    app.hub.start()
    server = make_http_server(app, max_body_bytes=config.limits.max_frame_bytes)
    activated = listening_sockets()
    if activated:
        server.add_sockets(activated)
    else:
        server.listen(config.server.port, config.server.host)
    # Everything loaded so far (modules, classes, templates) lives as long as the process: keep it out
    # of the garbage collector's full passes, which otherwise pause every client to rescan it.
    gc.freeze()
    if activated:
        log.info("rooms serving %d sockets from systemd (backend: %s)", len(activated), backend.kind)
    else:
        log.info("rooms listening on http://%s:%d/ (backend: %s)", config.server.host, config.server.port, backend.kind)
    systemd.ready(app.hub.status())
    systemd.start_watchdog(app.hub.status)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP too: a closed terminal or a `kill -HUP` must not cut clients off with messages unstored.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()

    log.info("shutting down")
    systemd.stopping()
    server.stop()
    hub = app.hub
    # New messages are refused (their senders told so); those in flight are stored and broadcast, so
    # every stored message reaches its sender before its socket closes.
    hub.stop_accepting()
    # One grace period for both waits: the stores in flight, then the close handshakes.
    deadline = loop.time() + config.server.shutdown_grace
    try:
        await asyncio.wait_for(hub.wait_idle(), config.server.shutdown_grace)
    except TimeoutError:
        log.warning("stores still in flight after %.0fs; closing anyway", config.server.shutdown_grace)
    hub.close_all()
    try:
        # Give clients the moment to answer the 1001 close frames before their streams are cut.
        await asyncio.wait_for(hub.wait_empty(), max(0.0, deadline - loop.time()))
    except TimeoutError:
        log.info("some clients did not answer the close handshake in time")
    await server.close_all_connections()
    await backend.close()
    systemd.close()
    log.info("stopped")


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """``server.event_loop``: asyncio's own loop (None), or uvloop's, which must be installed."""
    if name != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        raise ConfigError("server.event_loop: uvloop is not installed (pip install uvloop)") from None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(
            args.config,
            overrides={"server.host": args.host, "server.port": args.port, "backend.url": args.backend},
        )
        loop_factory = event_loop_factory(config.server.event_loop)
    except ConfigError as exc:
        print(f"rooms: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.check_config:
        try:
            create_backend(config.backend_options())  # checks the backend's own options; connects to nothing
        except BackendConfigError as exc:
            print(f"rooms: config error: {exc}", file=sys.stderr)
            return EXIT_CONFIG_ERROR
        print(describe(config), end="")
        return 0
    if args.backup is not None or args.restore is not None:
        return sqlite_backup.run(config.backend.url, backup_to=args.backup, restore_from=args.restore)
    configure_logging(config.server.log_level, config.server.log_format)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(config))
    except BackendUnavailable as exc:
        print(f"rooms: backend unreachable after {config.backend.connect_timeout:g}s: {exc}", file=sys.stderr)
        return EXIT_BACKEND_UNREACHABLE
    except (ConfigError, BackendConfigError) as exc:
        print(f"rooms: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except OSError as exc:
        print(f"rooms: cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}", file=sys.stderr)
        return EXIT_BACKEND_UNREACHABLE
    return 0


if __name__ == "__main__":
    sys.exit(main())
