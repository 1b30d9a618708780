"""The room page's log as a reader sees it, in a real headless Chromium against ``server.py``: joins and
leaves between messages, the formatting subset, the "New" divider, the name field folding away, the width
of a wide screen and the author key the page sends."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import named, open_room

pytestmark = pytest.mark.timeout(180)

PRESENCE_WAIT_MS = 3_000
TRANSPARENT = ("rgba(0, 0, 0, 0)", "transparent")


def test_a_join_is_a_note_of_its_own_not_part_of_the_message_before_it(new_context, server, room):
    ann = open_room(new_context(), server.url, room)
    named(ann, "ann")
    server.post(room, "carl", "@ann are you there?")
    mention = ann.locator("#chat > li.mention")
    expect(mention).to_have_count(1)
    bob = open_room(new_context(), server.url, room)
    named(bob, "bob")

    note = ann.locator("#chat .note")
    expect(note).to_have_text(["bob joined"], timeout=PRESENCE_WAIT_MS)
    assert ann.locator("#chat li .note").count() == 0
    assert note.evaluate("p => p.closest('li, .mention')") is None
    assert note.evaluate("p => getComputedStyle(p.parentElement).backgroundColor") in TRANSPARENT
    expect(mention.locator(".text")).to_have_text("@ann are you there?")
    # The message keeps its highlight; the next message, after the note, starts with its own header.
    server.post(room, "carl", "after the join")
    expect(ann.locator("#chat > li .text")).to_have_text(["@ann are you there?", "after the join"])
    expect(ann.locator("#chat > li").last.locator(".handle")).to_be_visible()
    assert ann.locator("#chat > li").last.evaluate("li => li.classList.contains('cont')") is False
