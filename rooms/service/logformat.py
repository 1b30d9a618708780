"""The log's two formats (``server.log_format``), and the one handler that writes either to stderr.

``text``: one readable line an event, ``<time> <LEVEL> <logger>: <message>``; an event's own fields (the
access log's, a socket's end) are in its message too. ``json``: one JSON object a line, ``ts`` (UTC, ISO
8601), ``level``, ``logger``, ``message``, then the event's own fields (what it was logged with as
``extra``) and ``exc_info`` for a traceback. Either way a line is never split and never shows a credential
(``rooms.service.logmask``), and a template repeated too often is held back (``rooms.service.lograte``).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from rooms.service.logmask import make_safe_for_log
from rooms.service.lograte import limit_repeated_lines

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="ts",
        # A default is written first and the timestamp fills its place: ``ts`` leads each line, as in text.
        defaults={"ts": None},
    )


def formatter_for(log_format: str) -> logging.Formatter:
    return json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: str, log_format: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's records at ``level`` and above to ``stream`` (stderr) in ``log_format``."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    # The limit first: it reads the templates, which the masking may rewrite.
    limit_repeated_lines(handler)
    make_safe_for_log(handler)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
