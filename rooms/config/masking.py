"""Secrets kept out of what rooms prints: the resolved config (``check-config``), URLs and error lines."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import yaml

if TYPE_CHECKING:
    from rooms.config.model import Config

SECRET_WORDS = ("secret", "token", "password")
MASK = "********"


def is_secret(key: str) -> bool:
    # A ``..._file`` key holds the path of a secret, which may be shown, not the secret.
    name = key.rpartition(".")[2]
    return not name.endswith("_file") and any(word in name for word in SECRET_WORDS)


def describe(config: Config) -> str:
    """The resolved config as YAML, with secrets masked: what ``--check-config`` prints."""
    sections = asdict(config)
    for values in sections.values():
        for key, value in values.items():
            if not is_secret(key):
                continue
            if isinstance(value, str) and value:
                values[key] = MASK
            elif isinstance(value, list):
                values[key] = [_masked_entry(item) for item in value]
    sections["backend"]["url"] = mask_url(config.backend.url)
    return yaml.safe_dump(sections, sort_keys=False, default_flow_style=False)


def _masked_entry(item: object) -> object:
    """One entry of a list of secrets: masked whole, or (an entry with a name, ``{name: alice, token:
    ...}``) with its secret keys masked and the rest shown."""
    if not isinstance(item, dict):
        return MASK
    shown = {key: MASK if is_secret(key) else value for key, value in item.items() if value is not None}
    shown = dict(sorted(shown.items(), key=lambda pair: is_secret(pair[0])))  # the name first
    return shown if any(not is_secret(key) for key in shown) else MASK


def mask_url(url: str) -> str:
    """A URL's password replaced by the mask (``redis://:pw@host`` and ``postgresql://u:pw@host`` alike)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
