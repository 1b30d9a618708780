"""Running Lua scripts in one pipeline on one Redis (a single server, a Sentinel master or one
cluster shard's master), each reply in its place."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

# A script's text, its keys and its arguments.
Run = tuple[str, list[str], list[str | int]]
# How long a batch waits for its replicas' confirmation before it counts as failed.
REPLICA_WAIT_MS = 1000


async def run_scripts(redis: Redis, shas: dict[str, str], runs: list[Run], replicas: int = 0) -> list[Any]:
    """Run ``runs`` (each script's SHA1 in ``shas``) in one pipeline, an exception in the place of one
    that failed; with ``replicas``, each counts as failed unless that many replicas confirm it."""
    if not runs:
        return []
    for attempt in range(2):
        pipe = redis.pipeline(transaction=False)
        for script, keys, args in runs:
            pipe.evalsha(shas[script], len(keys), *keys, *args)
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
        # Redis restarted, or a replica became master, without the scripts: load them and send the batch
        # again (the stores that did run find their own first attempt).
        for script in shas:
            await redis.script_load(script)
    raise AssertionError("unreachable")
