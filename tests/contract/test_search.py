"""Searching a room's messages (``Backend.search``), run against every factory in tests/support/factories/
through the shared ``make_backend`` fixture: every backend finds exactly the same messages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from backends.base import Backend, NewMessage, StoredMessage, utc_timestamp
from backends.search import SEARCH_SCAN_MESSAGES, SearchQuery
from tests.support.messages import store, store_soon
from tests.support.waiting import eventually

TEXTS = [
    "Hello World",  # 0
    "hello there, world!",  # 1
    "say HELLO to the worldwide web",  # 2
    "goodbye world",  # 3
    "hellothere is one word",  # 4
    "othello is a play",  # 5
]


async def store_all(backend: Backend, room: str, texts: list[str]) -> list[StoredMessage]:
    return [(await store(backend, room, "ann", text)).message for text in texts]


async def found(backend: Backend, room: str, q: str, limit: int = 50, before: str | None = None) -> list[str]:
    page = await backend.search(room, SearchQuery.parse(q), limit, before)
    return [message.message for message in page.messages]


@pytest.mark.gen_test(timeout=30)
async def test_every_word_case_insensitive_whole_words_the_last_a_prefix_newest_first(make_backend):
    backend = await make_backend()
    await store_all(backend, "lobby", TEXTS)
    assert await found(backend, "lobby", "hello") == [TEXTS[4], TEXTS[2], TEXTS[1], TEXTS[0]]  # a prefix
    assert await found(backend, "lobby", "hello ") == [TEXTS[2], TEXTS[1], TEXTS[0]]  # a whole word
    assert await found(backend, "lobby", "HeLLo WORLD ") == [TEXTS[1], TEXTS[0]]
    assert await found(backend, "lobby", "world hello") == [TEXTS[1], TEXTS[0]]  # "worldwide" is not "world"
    assert await found(backend, "lobby", "hello wor") == [TEXTS[2], TEXTS[1], TEXTS[0]]
    assert await found(backend, "lobby", "world hel") == [TEXTS[1], TEXTS[0]]
    assert await found(backend, "lobby", "ello") == []  # inside a word is not the start of one
    assert await found(backend, "lobby", "thello") == []
    assert await found(backend, "lobby", "play is") == [TEXTS[5]]
    assert await found(backend, "lobby", "a play") == [TEXTS[5]]  # one letter is a word too
    assert await found(backend, "lobby", "world hello world hel") == [TEXTS[1], TEXTS[0]]  # repeats count once


@pytest.mark.gen_test(timeout=30)
async def test_words_are_unicode_runs_compared_case_folded(make_backend):
    backend = await make_backend()
    texts = [
        "Die Straße ist NASS",
        "ÉCOLE d'été",
        "日本語 のテキスト",
        "write to ann@example.com or see https://example.org/path_to?x=1",
        "snake_case_name and the of in",
        "ΣΊΣΥΦΟΣ",
    ]
    await store_all(backend, "lobby", texts)
    assert await found(backend, "lobby", "strasse nass") == [texts[0]]
    assert await found(backend, "lobby", "straße ") == [texts[0]]
    assert await found(backend, "lobby", "école ÉTÉ") == [texts[1]]
    assert await found(backend, "lobby", "d ") == [texts[1]]  # d'été: "d" is a word
    assert await found(backend, "lobby", "d") == [texts[1], texts[0]]  # and "Die" starts with one
    assert await found(backend, "lobby", "日本") == [texts[2]]
    assert await found(backend, "lobby", "日本 ") == []
    assert await found(backend, "lobby", "example") == [texts[3]]
    assert await found(backend, "lobby", "ann com org") == [texts[3]]
    assert await found(backend, "lobby", "path_to x 1") == [texts[3]]
    assert await found(backend, "lobby", "path") == [texts[3]]
    assert await found(backend, "lobby", "snake ") == []  # snake_case_name is one word
    assert await found(backend, "lobby", "snake_c") == [texts[4]]
    assert await found(backend, "lobby", "the of in") == [texts[4]]  # words an index might skip
    assert await found(backend, "lobby", "σίσυφος") == [texts[5]]
    assert await found(backend, "lobby", "?!") == []  # no word at all finds nothing


@pytest.mark.gen_test(timeout=30)
async def test_long_words_match_whole_or_by_their_start_and_only_themselves(make_backend):
    backend = await make_backend()
    stem = "supercalifragilisticexpialidocious" * 2
    texts = [f"{stem}one tail", f"{stem}two tail", f"{'ü' * 50} end"]
    await store_all(backend, "lobby", texts)
    assert await found(backend, "lobby", f"{stem}one ") == [texts[0]]
    assert await found(backend, "lobby", f"{stem}one tail") == [texts[0]]
    assert await found(backend, "lobby", f"{stem}t") == [texts[1]]
    assert await found(backend, "lobby", stem) == [texts[1], texts[0]]
    assert await found(backend, "lobby", "Ü" * 49) == [texts[2]]
    assert await found(backend, "lobby", "ü" * 49 + " ") == []


@pytest.mark.gen_test(timeout=30)
async def test_before_pages_to_older_matches_and_limit_holds(make_backend):
    backend = await make_backend()
    stored = await store_all(backend, "lobby", [f"match {n}" if n % 2 else f"other {n}" for n in range(14)])
    matches = [message for message in reversed(stored) if message.message.startswith("match")]
    query = SearchQuery.parse("match")
    first = await backend.search("lobby", query, 3)
    assert (first.messages, first.has_more) == (matches[:3], True)
    second = await backend.search("lobby", query, 3, before=first.messages[-1].id)
    assert (second.messages, second.has_more) == (matches[3:6], True)
    third = await backend.search("lobby", query, 3, before=second.messages[-1].id)
    assert (third.messages, third.has_more) == (matches[6:], False)
    whole = await backend.search("lobby", query, 7)
    assert (whole.messages, whole.has_more) == (matches, False)
    assert (await backend.search("lobby", query, 1, before=stored[0].id)).messages == []
    assert (await backend.search("lobby", query, 2, before="0")).messages == []
    assert [m.id for m in (await backend.search("lobby", query, 2, before=stored[6].id)).messages] == [
        stored[5].id,
        stored[3].id,
    ]


@pytest.mark.gen_test(timeout=30)
async def test_results_are_stored_messages_of_that_room_only(make_backend):
    backend = await make_backend()
    ours = (await store(backend, "lobby", "ann", "shared words here", "c-1", user="ann-sub", moderator=True)).message
    await store(backend, "elsewhere", "bob", "shared words here")
    await store(backend, "lobby-2", "bob", "shared words here")
    page = await backend.search("lobby", SearchQuery.parse("shared words"), 10)
    assert (page.messages, page.has_more) == ([ours], False)
    assert (await backend.search("nobody-here", SearchQuery.parse("shared"), 10)).messages == []


@pytest.mark.gen_test(timeout=30)
async def test_a_deleted_message_is_never_found(make_backend):
    backend = await make_backend()
    stored = await store_all(backend, "lobby", ["secret plan one", "secret plan two", "secret plan three"])
    assert await backend.delete_message("lobby", stored[1].id)
    assert await backend.delete_message("lobby", stored[2].id)  # the newest too
    page = await backend.search("lobby", SearchQuery.parse("secret plan"), 10)
    assert (page.messages, page.has_more) == ([stored[0]], False)
    assert await found(backend, "lobby", "two") == []
    later = (await store(backend, "lobby", "ann", "secret plan four")).message
    assert await found(backend, "lobby", "secret") == [later.message, stored[0].message]


@pytest.mark.gen_test(timeout=30)
async def test_an_edited_message_matches_its_current_text_only_and_a_change_never_matches(make_backend):
    backend = await make_backend()
    author = "key:" + "a" * 64
    first = (
        await backend.store(NewMessage("lobby", "ann", "the original wording", None, utc_timestamp(), author=author))
    ).message
    other = (await store(backend, "lobby", "bob", "original too")).message
    edit = await backend.edit_message("lobby", first.id, "a revised wording", utc_timestamp(), frozenset({author}))
    assert await backend.react("lobby", other.id, "sub:carol", "👍", True) is not None
    assert await found(backend, "lobby", "original") == ["original too"]
    assert await found(backend, "lobby", "revised") == await found(backend, "lobby", "wording") == ["a revised wording"]
    # Found as they now stand, as history reads them; a change's position pages like an id.
    page = await backend.search("lobby", SearchQuery.parse("wording too"), 10)
    assert page.messages == []
    both = (await backend.search("lobby", SearchQuery.parse("a"), 10)).messages + (
        await backend.search("lobby", SearchQuery.parse("original"), 10)
    ).messages
    assert both == [await backend.message("lobby", first.id), await backend.message("lobby", other.id)]
    assert both[0] is not None and both[0].edited == edit.edited and both[1].reactions == (("👍", 1),)
    assert await found(backend, "lobby", "wording", before=edit.at) == ["a revised wording"]
    assert await found(backend, "lobby", "original", before=first.id) == []
    # Deleted by its author, it is found by neither text.
    assert await backend.delete_message("lobby", first.id, frozenset({author}))
    assert await found(backend, "lobby", "wording") == await found(backend, "lobby", "original wording") == []


@pytest.mark.gen_test(timeout=30)
async def test_a_pruned_message_is_never_found(make_backend):
    backend = await make_backend(retain_per_room=10)
    stored = await store_all(backend, "lobby", [f"needle {n}" for n in range(60)])

    async def pruned() -> list[StoredMessage] | None:
        # Read until pruning is done: a prune may still be on its way between two reads.
        kept = (await backend.history("lobby", 200)).messages
        matching = (await backend.search("lobby", SearchQuery.parse("needle"), 50)).messages
        return kept if len(kept) <= 20 and matching == kept[::-1] else None

    kept = await eventually(pruned, timeout=10, interval=0.1, message="at most 20 kept, and found")
    assert len(kept) >= 10
    assert await found(backend, "lobby", "needle 0 ") == []
    assert await found(backend, "lobby", f"needle {len(stored) - 1}") == [stored[-1].message]


@pytest.mark.gen_test(timeout=30)
async def test_an_expired_room_finds_nothing_and_its_next_messages_are_found(make_backend):
    backend = await make_backend()
    await store_all(backend, "lobby", ["old news"])
    assert await backend.expire_rooms((datetime.now(UTC) + timedelta(seconds=5)).isoformat()) == 1
    assert await found(backend, "lobby", "news") == []
    fresh = (await store(backend, "lobby", "ann", "new news")).message
    assert await found(backend, "lobby", "news") == [fresh.message]


@pytest.mark.gen_test(timeout=120)
async def test_past_the_read_bound_an_index_finds_old_matches_and_a_bounded_read_says_more_may_exist(make_backend):
    backend = await make_backend(retain_per_room=0)
    oldest = (await store(backend, "lobby", "ann", "needle in a haystack")).message
    for start in range(0, SEARCH_SCAN_MESSAGES + 10, 1000):
        count = min(1000, SEARCH_SCAN_MESSAGES + 10 - start)
        await asyncio.gather(*(store_soon(backend, "lobby", "ann", f"hay {start + n}") for n in range(count)))
    page = await backend.search("lobby", SearchQuery.parse("needle"), 5)
    if backend.kind in ("sqlite", "postgresql", "mysql"):  # a full-text index: exact however far back
        assert (page.messages, page.has_more) == ([oldest], False)
    else:
        assert (page.messages, page.has_more) == ([], True)  # the newest 10,000 read, none of them a match
