"""Changes to stored messages, as the backend contract carries them: an edit, a deletion, reactions.

A room's history is a log: every message takes the next position in its room's order (its id), and so
does every change to one (its ``at``, comparable with ids through ``Backend.id_key``). Who may change a
message is said by its ``author``: ``"sub:<token sub>"`` or ``"key:<hash of the author key>"``, set by the
room layer only and never sent to a client; a message with none is changed by moderators only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

# A message carries at most this many different emoji among its reactions.
MAX_REACTION_KINDS = 20

# A message's reactions: each emoji with how many reacted with it, in the order they first came.
Reactions = tuple[tuple[str, int], ...]


class ChangeKind(StrEnum):
    EDIT = "edit"
    DELETE = "delete"
    REACTIONS = "reactions"


class MessageChange(NamedTuple):
    """A change to the message ``id`` of ``room``, made at position ``at``. An edit carries the new text
    and when it was made; reactions carry every count after the change (empty: none left)."""

    room: str
    id: str
    at: str
    kind: ChangeKind
    message: str | None = None
    edited: str | None = None
    reactions: Reactions = ()


def count_reactions(reactors: dict[str, set[str]]) -> Reactions:
    """The counts of ``reactors`` (emoji -> who reacted with it, in the order the emoji first came),
    leaving out the emoji nobody reacts with any more."""
    return tuple((emoji, len(who)) for emoji, who in reactors.items() if who)
