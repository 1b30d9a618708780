"""What a client sends, made safe for the log.

Credentials: tokens and invites travel in URLs (``/<label>/?token=...``, the socket's ``?token=``), and
Tornado's access log and error lines show the URL of each request: anyone who can read the log could
otherwise sign in as the users it names, or enter the rooms it names. A parameter is a credential when
its name, decoded as the handlers decode it, is one: ``?%74oken=`` is read as ``?token=``, so it is
masked as one.

Control characters: a request target may hold raw bytes such as NEL (0x85, which Tornado reads as
U+0085), and decoded text may hold anything; written as they are, they would split a line (a forged
line in the log) or garble a terminal. Every one is written as its escape (``\\x85``, ``\\u2028``).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

from rooms.config.masking import MASK

CREDENTIAL_PARAMETERS = frozenset({"token", "invite"})

# A query parameter, wherever a line shows one: its name and value as written (``%3D`` for ``=`` too).
_PARAMETER = re.compile(r"(?P<lead>^|[?&;\s])(?P<name>[^=&;?\s\"')]*?)(?P<equals>=|%3[Dd])(?P<value>[^&;\s\"')]*)")
# C0 and C1 controls (NEL is U+0085) and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _mask_parameter(match: re.Match[str]) -> str:
    if unquote_plus(match["name"]).lower() not in CREDENTIAL_PARAMETERS or not match["value"]:
        return match[0]
    return f"{match['lead']}{match['name']}{match['equals']}{MASK}"


def mask_credentials_in(text: str) -> str:
    return _PARAMETER.sub(_mask_parameter, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls_in(text: str) -> str:
    return _CONTROL.sub(_escape, text)


class ClientTextFilter(logging.Filter):
    """Rewrites a record that shows a credential or a control character, leaving every other as it is.
    A traceback (the record's exception) is not the message: it keeps its lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = escape_controls_in(mask_credentials_in(message))
        if safe != message:
            record.msg, record.args = safe, None
        return True


def make_safe_for_log(handler: logging.Handler) -> None:
    """Install the filter on ``handler``, after any filter that reads records' templates."""
    handler.addFilter(ClientTextFilter())
