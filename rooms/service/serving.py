"""The ``rooms`` command, as server.py runs it: ``rooms [serve] [--config PATH] [--host H] [--port N] [--backend
URL]`` serves; ``rooms check-config``, ``token``, ``invite``, ``backup`` and ``restore`` do one thing
and exit instead (their arguments: rooms/service/cli.py).

Exit status: 0 after a clean shutdown (SIGTERM, SIGINT or SIGHUP), 1 when the backend cannot be reached within
``backend.connect_timeout`` (a service manager may restart it), 2 for a configuration error or a backend that
refuses rooms (a wrong password, a database that does not exist, a path that cannot be written): no restart
mends those.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable

from backends.errors import BackendConfigError, BackendRefused, BackendUnavailable
from backends.sql import backup as sqlite_backup
from rooms.config.loading import config_file, load_config
from rooms.config.model import Config
from rooms.errors import ConfigError
from rooms.service import cli
from rooms.service.allocator import check_choice, log_allocator
from rooms.service.cli import parse_args
from rooms.service.collector import MemoryPolicy, glibc_malloc_trim
from rooms.service.commands import check_config, config_error, print_invite, print_token
from rooms.service.descriptors import log_descriptor_limit
from rooms.service.logformat import configure_logging
from rooms.service.startup import EXIT_BACKEND_UNREACHABLE, report_backend_failure, start_backend
from rooms.service.systemd import Notifier, listening_sockets
from rooms.web.app import make_app
from rooms.web.httpserver import make_http_server

# Connections waiting to be accepted, as systemd/rooms.socket's Backlog= (the kernel caps it at
# net.core.somaxconn): a big room's pages coming back together after a restart overflow Tornado's 128, and a
# connection dropped there waits for the client to send its SYN again, 1 s after the first, then 3 s and 7 s.
LISTEN_BACKLOG = 4096

log = logging.getLogger("rooms")


async def serve(config: Config) -> None:
    systemd = Notifier()
    backend = await start_backend(config)
    # After the backend answered (a start that fails says so in one line, and only that), before listening.
    log_descriptor_limit()
    log_allocator(config.server.allocator)
    app = make_app(config, backend)
    await app.hub.load_moderation()  # bans and locks hold from the first request on
    app.hub.start()
    server = make_http_server(app, max_body_bytes=config.limits.max_frame_bytes)
    activated = listening_sockets()
    if activated:
        server.add_sockets(activated)
    else:
        server.listen(config.server.port, config.server.host, backlog=LISTEN_BACKLOG)
    # Full collections on a timer, not as sockets pile up; memory given back after many leave.
    memory = MemoryPolicy(lambda: app.hub.fanout.counts()[0], glibc_malloc_trim(), release=app.forget_departed)
    memory.start()
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
    # HTTP requests on their way were answered meanwhile; those still under way get what is left of the grace.
    await server.drain(deadline)
    await hub.wait_closed()
    await backend.close()
    memory.stop()
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
    source = config_file(args.config, os.environ)
    try:
        config = load_config(
            args.config,
            overrides={"server.host": args.host, "server.port": args.port, "backend.url": args.backend},
        )
        loop_factory = event_loop_factory(config.server.event_loop)
        check_choice(config.server.allocator)
    except ConfigError as exc:
        return config_error(exc)
    if args.command == cli.CHECK_CONFIG:
        return check_config(config, source, connect=args.connect)
    if args.command == cli.TOKEN:
        return print_token(config, args)
    if args.command == cli.INVITE:
        return print_invite(config, args.label, args.ttl)
    if args.command in (cli.BACKUP, cli.RESTORE):
        backup_to, restore_from = (args.path, None) if args.command == cli.BACKUP else (None, args.path)
        return sqlite_backup.run(config.backend.url, backup_to=backup_to, restore_from=restore_from)
    configure_logging(config.server.log_level, config.server.log_format)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(config))
    except (BackendRefused, BackendUnavailable, BackendConfigError) as exc:
        return report_backend_failure(config, exc)
    except ConfigError as exc:
        return config_error(exc)
    except OSError as exc:
        print(f"rooms: cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}", file=sys.stderr)
        return EXIT_BACKEND_UNREACHABLE
    return 0
