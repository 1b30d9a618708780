"""Writing a room's batch when it holds change frames: each goes only to the sockets that asked for its
feature, in its place among the messages (which go to every socket).

The sockets are grouped by the change features they asked for (a room has few distinct sets), and each
group's buffer is joined once and written to each of its sockets in one system call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar

from rooms.protocol import Feature

NO_FEATURES: frozenset[Feature] = frozenset()


class FramesTarget(Protocol):
    def send_frames(self, data: bytes, frames: int = 1) -> None:
        """Write ``frames`` complete, already-framed WebSocket frames."""


Target = TypeVar("Target", bound=FramesTarget)


def write_by_audience(
    frames: list[bytes],
    change_features: Mapping[int, Feature],
    members: Iterable[Target],
    asked: Mapping[Target, frozenset[Feature]],
) -> None:
    """Write ``frames`` to ``members``: a frame whose index is in ``change_features`` only to a member
    that ``asked`` for that feature, every other frame to all."""
    groups: dict[frozenset[Feature], list[Target]] = {}
    for member in members:
        groups.setdefault(asked.get(member, NO_FEATURES), []).append(member)
    for features, group in groups.items():
        chosen = [
            frame
            for index, frame in enumerate(frames)
            if index not in change_features or change_features[index] in features
        ]
        if not chosen:
            continue
        data = b"".join(chosen)
        for member in group:
            member.send_frames(data, len(chosen))
