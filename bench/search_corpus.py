"""The search scenario's room: messages of made-up words drawn with a Zipf-like law, and their fill.

Chat text has a few words in nearly every message and a long tail of words seen a handful of times;
a search index is fast or slow by which of the two it is asked for. ``Corpus`` makes such text the same
way every time (a fixed seed): ``VOCABULARY`` pronounceable words, the word of rank ``r`` drawn with
weight ``1 / r``, 4 to 20 words a message. It also names the words the scenario's queries ask for
(``query_words``), picked by rank so that each has the frequency its query is meant to have.

``fill`` stores the messages straight through the backend (the writer the server itself uses, group
commit, many stores in flight) before the server starts: through the HTTP API, 100,000 messages would
take minutes and meet the rate limits.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterator
from pathlib import Path

from backends import create_backend
from backends.base import BackendOptions, NewMessage, StoreResult, utc_timestamp

SEED = 20261206
VOCABULARY = 20_000
WORDS_PER_MESSAGE = (4, 20)
FILL_IN_FLIGHT = 2_000
# A word made of these letters only is never one of the corpus's (they have no "q" or "z").
MISSING_WORD = "zqxzqx"
_ONSETS = "b c d f g h k l m n p r s t v w br ch cl dr fl gr pl sh st tr".split()
_VOWELS = "a e i o u ai ea oo".split()
_CODAS = ["", "", "", "n", "r", "s", "l", "t", "nd", "st"]


class Corpus:
    def __init__(self, seed: int = SEED) -> None:
        self._random = random.Random(seed)
        self.words = _vocabulary(self._random, VOCABULARY)
        self._cumulative = list(itertools.accumulate(1 / rank for rank in range(1, VOCABULARY + 1)))

    def messages(self, count: int) -> Iterator[str]:
        """``count`` message texts, the same ones for the same seed."""
        draw = self._random
        for _ in range(count):
            length = draw.randint(*WORDS_PER_MESSAGE)
            chosen = draw.choices(self.words, cum_weights=self._cumulative, k=length)
            yield " ".join(chosen).capitalize() + draw.choice((".", ".", "!", "?", ""))

    def query_words(self) -> dict[str, str]:
        """The words the queries use, by rank: the commonest, a middling one, a rare one, a prefix."""
        words = self.words
        return {
            "common": words[0],  # in about 2 of every 3 messages
            "middling": words[29],  # in about 1 of every 25
            "rare": words[VOCABULARY - 1],  # a handful of times in 100,000 messages
            "prefix": words[99][:3],  # the start of many words
            "missing": MISSING_WORD,
        }


def _vocabulary(draw: random.Random, size: int) -> list[str]:
    """``size`` distinct words of one to four syllables, shorter ones more often first (common words are
    short in chat too)."""
    found: dict[str, None] = {}
    while len(found) < size:
        syllables = 1 + min(3, int(draw.expovariate(1.8) + len(found) / size * 2))
        word = "".join(draw.choice(_ONSETS) + draw.choice(_VOWELS) for _ in range(syllables)) + draw.choice(_CODAS)
        found.setdefault(word)
    return list(found)


async def _store_all(url: str, room: str, texts: Iterator[str]) -> int:
    backend = create_backend(BackendOptions(url, retain_per_room=0))
    await backend.start()
    stored = 0
    try:
        pending: list[asyncio.Future[StoreResult]] = []
        for text in texts:
            pending.append(backend.store_soon(NewMessage(room, "bench", text, None, utc_timestamp())))
            if len(pending) >= FILL_IN_FLIGHT:
                await asyncio.gather(*pending)
                stored += len(pending)
                pending = []
        await asyncio.gather(*pending)
        return stored + len(pending)
    finally:
        await backend.close()


def fill(url: str, room: str, count: int) -> dict[str, float]:
    """Store ``count`` of the corpus's messages in ``room``; how long it took and how many a second (and,
    on PostgreSQL, how long ``analyze`` took after it). A SQLite file is started afresh, so that the room
    is measured alone whatever ran before."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
    texts = list(Corpus().messages(count))  # made before the clock starts: the fill measures the store
    began = time.perf_counter()
    stored = asyncio.run(_store_all(url, room, iter(texts)))
    seconds = time.perf_counter() - began
    filled = {"messages": stored, "seconds": round(seconds, 2), "messages_per_s": round(stored / seconds)}
    if url.startswith("postgresql://"):
        filled["analyze_seconds"] = analyze(url)
    return filled


def analyze(url: str) -> float:
    """Give PostgreSQL's planner the statistics of the filled table, as autovacuum would on a server that
    runs it: without them it reads the whole room for every search (seconds at 100,000 messages) instead
    of asking the full-text index. Seconds it took."""
    import psycopg2

    began = time.perf_counter()
    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE messages")
    finally:
        connection.close()
    return round(time.perf_counter() - began, 2)
