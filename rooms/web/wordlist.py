"""Readable random room labels for ``/new``, e.g. ``quiet-river-4821``."""

from __future__ import annotations

import secrets

ADJECTIVES = (
    "amber autumn bold brave bright calm clever cosmic crisp dancing dawn eager early fancy gentle "
    "golden happy hidden honest jolly kind lively lucky mellow misty noble odd patient proud quick "
    "quiet rapid rosy rustic shy silent silver sleepy snowy solar spring steady sunny swift tidy "
    "velvet wandering warm wild windy wise young zesty"
).split()
NOUNS = (
    "anchor apple badger bay beacon birch brook canyon cedar cloud comet coral creek dune ember "
    "falcon fern field forest fox garden glade harbor hill island lake lantern maple meadow moon "
    "mountain oak ocean otter owl panda pebble pine planet pond rain raven river robin sea shore "
    "sky sparrow star stone storm sun thunder tiger valley willow wind"
).split()


def random_label() -> str:
    """About 2.5 x 10^7 labels: collisions are rare, and a collision only means joining a live room."""
    number = secrets.randbelow(9000) + 1000
    return f"{secrets.choice(ADJECTIVES)}-{secrets.choice(NOUNS)}-{number}"
