"""Credentials kept out of the log. Tokens and invites travel in URLs (``/<label>/?token=...``, the
socket's ``?token=``), and Tornado's access log and error lines show the URL of each request: anyone
who can read the log could otherwise sign in as the users it names, or enter the rooms it names."""

from __future__ import annotations

import logging
import re

from rooms.config import MASK

# A query parameter named token or invite, however the URL was written (``%3D`` for ``=``; any case).
_CREDENTIAL = re.compile(r"((?:^|[?&;\s])(?:token|invite)(?:=|%3D))[^&;\s\"')]+", re.IGNORECASE)


def mask_credentials_in(text: str) -> str:
    return _CREDENTIAL.sub(rf"\g<1>{MASK}", text)


class CredentialsFilter(logging.Filter):
    """Rewrites a record that shows a credential, leaving every other record as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_credentials_in(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def mask_credentials(handler: logging.Handler) -> None:
    """Install the filter on ``handler``, after any filter that reads records' templates."""
    handler.addFilter(CredentialsFilter())
