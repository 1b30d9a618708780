"""The audit log's entries: what a moderator did, as the room layer records it and every backend keeps it
(``Backend.record_audit``, ``Backend.audit_page``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

# The kinds of moderator action the audit log keeps, and how many entries it keeps (the newest).
AUDIT_ACTIONS = ("delete", "ban", "lift", "lock", "unlock", "invite")
DEFAULT_AUDIT_KEEP = 10000
# What an action's details may hold: JSON scalars, kept and answered exactly.
AuditDetail = str | int | None


@dataclass(frozen=True, slots=True)
class AuditAction:
    """A moderator's action on its way into the audit log: who (``actor``: a token's name or fingerprint,
    or a signed token's ``sub``), what (one of ``AUDIT_ACTIONS``), in which ``room`` (``None``: every
    room), why (``reason``, ``None`` for none) and the action's own ``details`` (the message id, the ban's
    id, handle, address and seconds...)."""

    actor: str
    action: str
    room: str | None
    reason: str | None = None
    details: Mapping[str, AuditDetail] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An action as the audit log keeps it: its ``id`` (increasing) and ``at`` (ISO 8601 UTC, the store's
    clock) added to what was recorded."""

    id: int
    at: str
    actor: str
    action: str
    room: str | None
    reason: str | None
    details: Mapping[str, AuditDetail]

    @classmethod
    def of(cls, entry_id: int, at: str, action: AuditAction) -> AuditEntry:
        return cls(entry_id, at, action.actor, action.action, action.room, action.reason, dict(action.details))


def details_json(details: Mapping[str, AuditDetail]) -> str:
    """An action's details as the stores that keep text keep them."""
    return json.dumps(dict(details), separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def details_from_json(text: str) -> dict[str, AuditDetail]:
    decoded: Any = json.loads(text)
    return cast(dict[str, AuditDetail], decoded)
