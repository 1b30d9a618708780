"""The Redis backend's Lua scripts: read once from ``lua/*.lua`` (package data, shipped with the code),
and run one way, by their SHA1 (``EVALSHA``), in one pipeline per batch, each reply in its place.

A Redis that restarted, or a replica that became master, may not hold a script: a batch that meets
``NoScriptError`` loads its scripts and is sent again once (the stores that did run find their own first
attempt). What each script takes and returns is said at the top of its file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

# How long a batch waits for its replicas' confirmation before it counts as failed.
REPLICA_WAIT_MS = 1000


@dataclass(frozen=True, slots=True)
class LuaScript:
    name: str
    text: str
    sha: str

    def command(self, keys: list[str], args: list[str | int]) -> tuple[str | int, ...]:
        """The command that runs the script, for a pipeline or a bare connection."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


def _load(*parts: str) -> LuaScript:
    """A script from its files in ``lua/``, joined in order (a shared beginning first)."""
    text = "".join((files("backends.redis") / "lua" / f"{part}.lua").read_text(encoding="utf-8") for part in parts)
    return LuaScript(parts[-1], text, hashlib.sha1(text.encode()).hexdigest())


STORE = _load("store")
QUOTA = _load("quota")
PRESENCE = _load("presence")
ANCHOR = _load("anchor")
DELETE = _load("log", "delete")
EDIT = _load("log", "edit")
REACT = _load("log", "react")
PAGE = _load("page")
CHANGES = _load("changes")
ADD_BAN = _load("live_bans", "add_ban")
BANS = _load("live_bans", "bans")
LIFT_BAN = _load("live_bans", "lift_ban")
LOCK = _load("lock")
EXPIRE = _load("expire")
AUDIT = _load("audit")
ALL_SCRIPTS = (
    STORE,
    QUOTA,
    PRESENCE,
    ANCHOR,
    DELETE,
    EDIT,
    REACT,
    PAGE,
    CHANGES,
    ADD_BAN,
    BANS,
    LIFT_BAN,
    LOCK,
    EXPIRE,
    AUDIT,
)

# A script, its keys and its arguments.
Run = tuple[LuaScript, list[str], list[str | int]]


async def load_scripts(redis: Redis) -> None:
    """Load every script (on a cluster, on every master), so the first calls find them."""
    for script in ALL_SCRIPTS:
        await redis.script_load(script.text)


async def run_scripts(redis: Redis, runs: list[Run], replicas: int = 0) -> list[Any]:
    """Run ``runs`` in one pipeline, an exception in the place of one that failed; with ``replicas``,
    each counts as failed unless that many replicas confirm it."""
    if not runs:
        return []
    for attempt in range(2):
        pipe = redis.pipeline(transaction=False)
        for script, keys, args in runs:
            # (execute_command: a cluster pipeline refuses ``evalsha`` itself)
            pipe.execute_command(*script.command(keys, args))
        if replicas:
            # Acknowledged only once replicas have it: the master may be demoted any moment (a Sentinel
            # or cluster failover). WAIT covers every write this connection made before it.
            pipe.execute_command("WAIT", replicas, REPLICA_WAIT_MS)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        if replicas:
            replicated = replies.pop()
            if not isinstance(replicated, int) or replicated < replicas:
                failure = RedisError(f"not confirmed by {replicas} replica(s): {replicated!r}")
                replies = [reply if isinstance(reply, Exception) else failure for reply in replies]
        if attempt or not any(isinstance(reply, NoScriptError) for reply in replies):
            return replies
        for script in {run[0] for run in runs}:
            await redis.script_load(script.text)
    raise AssertionError("unreachable")


async def run_script(redis: Redis, script: LuaScript, keys: list[str], args: list[str | int]) -> Any:
    """One script's reply (``run_scripts`` of one), raising what it failed with."""
    [reply] = await run_scripts(redis, [(script, keys, args)])
    if isinstance(reply, Exception):
        raise reply
    return reply
