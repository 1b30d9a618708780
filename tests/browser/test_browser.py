"""The room page's script in a real headless Chromium, against ``server.py`` running as a real process.

Chromium comes from the system (Debian: ``apt-get install -y chromium``), never from a download: the tests
skip with the reason when it is missing, and fail under ``CI=true``, where it must be installed.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.support.browser import RECONNECT_WAIT_MS, WAIT_MS, ProxyThread, RoomsServer, open_room, send
from tests.support.processes import free_port

pytestmark = pytest.mark.timeout(180)


def test_message_typed_in_one_page_appears_live_in_another(new_context, server, room):
    ann = open_room(new_context(), server.url, room)
    bob = open_room(new_context(), server.url, room)
    send(ann, "ann", "hello from ann")
    for page in (ann, bob):
        expect(page.locator("#chat li")).to_have_count(1, timeout=WAIT_MS)
        expect(page.locator("#chat li .handle")).to_have_text("ann")
        expect(page.locator("#chat li .text")).to_have_text("hello from ann")
    expect(ann.locator("#outbox li")).to_have_count(0)
    expect(ann.locator("#message")).to_have_value("")


def test_shift_enter_makes_a_newline_and_the_message_keeps_it(new_context, server, room):
    ann = open_room(new_context(), server.url, room)
    bob = open_room(new_context(), server.url, room)
    ann.fill("#handle", "ann")
    ann.click("#message")
    ann.keyboard.type("line one")
    ann.keyboard.press("Shift+Enter")
    ann.keyboard.type("line two")
    expect(ann.locator("#message")).to_have_value("line one\nline two")
    ann.keyboard.press("Enter")
    expect(bob.locator("#chat li .text")).to_have_text("line one\nline two", timeout=WAIT_MS)
    assert bob.locator("#chat li .text").inner_text() == "line one\nline two"


def test_markup_in_handle_and_message_renders_as_text(new_context, server, room):
    handle = "<b>mallory</b>"
    message = "<img src=x onerror=\"document.body.dataset.xss='img'\"><script>document.body.dataset.xss='s'</script>"
    mallory = open_room(new_context(), server.url, room)
    reader = open_room(new_context(), server.url, room)
    send(mallory, handle, message)
    expect(reader.locator("#chat li .text")).to_have_text(message, timeout=WAIT_MS)
    # Once live from the socket, once rendered by the server after a reload: text both times.
    for page in (reader, mallory):
        for _ in range(2):
            expect(page.locator("#chat li .handle")).to_have_text(handle)
            expect(page.locator("#chat li .text")).to_have_text(message)
            assert page.locator("#chat img, #chat script, #chat b").count() == 0
            assert page.evaluate("document.body.dataset.xss") is None
            page.reload()
            expect(page.locator("#status")).to_have_attribute("data-state", "live")


def test_pages_run_under_their_content_security_policy_and_isolate_right_to_left_text(new_context, server, room):
    context = new_context()
    violations: list[str] = []
    context.on("console", lambda line: violations.append(line.text) if "Content Security Policy" in line.text else None)
    home = context.new_page()
    home.goto(f"{server.url}/")
    home.fill("#room-label", room)
    home.press("#room-label", "Enter")
    expect(home.locator("#status")).to_have_attribute("data-state", "live")  # the socket, under connect-src
    send(home, "\u05d3\u05e0\u05d4", "\u05e9\u05dc\u05d5\u05dd 42")
    item = home.locator("#chat li")
    expect(item.locator(".text")).to_have_text("\u05e9\u05dc\u05d5\u05dd 42")
    for part in (".handle", ".text"):
        assert item.locator(part).get_attribute("dir") == "auto"
    assert violations == []


def test_reload_keeps_the_handle(new_context, server, room):
    context = new_context()
    page = open_room(context, server.url, room)
    send(page, "carol", "hi")
    expect(page.locator("#chat li")).to_have_count(1, timeout=WAIT_MS)
    page.reload()
    expect(page.locator("#handle")).to_have_value("carol")
    another_tab = open_room(context, server.url, f"{room}-2")
    expect(another_tab.locator("#handle")).to_have_value("carol")


def test_history_is_rendered_in_order_and_not_repeated_by_the_socket(new_context, server, room):
    for text in ("first", "second", "third"):
        server.post(room, "ann", text)
    page = open_room(new_context(), server.url, room)
    server.post(room, "bob", "fourth")
    expect(page.locator("#chat li .text")).to_have_text(["first", "second", "third", "fourth"], timeout=WAIT_MS)
    # Server-rendered times ("... UTC") are rewritten in the reader's local time.
    for text in page.locator("#chat li time").all_inner_texts():
        assert "UTC" not in text


@pytest.fixture
def slow_server() -> Iterator[RoomsServer]:
    """A server whose rate a page outruns however slowly it is served: a burst of 3, then 0.75 a second, so
    the outbox's fourth message is refused unless each of the first ones took over 0.4 s to be answered."""
    running = RoomsServer(free_port(), config="limits:\n  burst: 3\n  messages_per_second: 0.75\n")
    running.start()
    yield running
    running.stop()


def test_messages_sent_faster_than_the_rate_limit_all_arrive_once_in_order(new_context, slow_server, room):
    """The outbox sends one message at a time; one the server refuses as too fast is kept and sent again."""
    server = slow_server
    count = 6  # twice the burst
    writer = open_room(new_context(), server.url, room)
    reader = open_room(new_context(), server.url, room)
    writer.fill("#handle", "ann")
    writer.evaluate(
        """count => {
            const form = document.getElementById("chatform");
            for (let i = 0; i < count; i++) {
                document.getElementById("message").value = "burst " + i;
                form.requestSubmit();
            }
        }""",
        count,
    )
    expected = [f"burst {i}" for i in range(count)]
    for page in (reader, writer):
        expect(page.locator("#chat li .text")).to_have_text(expected, timeout=WAIT_MS)
    expect(writer.locator("#outbox li")).to_have_count(0)
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as reply:
        assert 'rooms_client_errors_total{code="rate_limited"}' in reply.read().decode()


def test_resent_message_already_stored_is_shown_once_and_leaves_the_outbox(new_context, server, room):
    """A page that lost its socket after the server stored its message but before the echo arrived still
    holds the message in its outbox; the resend gets the stored message back, which must not be shown twice."""
    client_id = str(uuid.uuid4())
    server.post(room, "ann", "stored once", client_id)
    page = open_room(new_context(), server.url, room)
    pending = [{"client_id": client_id, "handle": "ann", "message": "stored once", "created": "2026-01-01T00:00:00Z"}]
    page.evaluate("([key, value]) => localStorage.setItem(key, value)", [f"rooms:outbox:{room}", json.dumps(pending)])
    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    expect(page.locator("#outbox li")).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator("#chat li .text")).to_have_text(["stored once"])
    assert page.evaluate(f"localStorage.getItem('rooms:outbox:{room}')") is None


def test_a_reader_who_scrolled_up_stays_put_and_others_follow_new_messages(new_context, server, room):
    for n in range(40):
        server.post(room, "ann", f"history {n}")
    following = open_room(new_context(), server.url, room)
    reading = open_room(new_context(), server.url, room)
    at_bottom = "(log => log.scrollHeight - log.scrollTop - log.clientHeight < 2)(document.getElementById('log'))"
    reading.evaluate("document.getElementById('log').scrollTop = 0")
    server.post(room, "bob", "news")
    for page in (following, reading):
        expect(page.locator("#chat li .text").last).to_have_text("news")
    assert following.evaluate(at_bottom)
    assert reading.evaluate("document.getElementById('log').scrollTop") == 0
    expect(reading.locator("#jump")).to_be_visible()
    reading.click("#jump")
    assert reading.evaluate(at_bottom)


def test_home_page_checks_the_label_and_opens_the_room(new_context, server, room):
    page = new_context().new_page()
    page.goto(server.url + "/")
    page.fill("#room-label", "no spaces!")
    page.click("#open-room button[type=submit]")
    expect(page.locator("#room-label-error")).to_be_visible()
    expect(page.locator("#room-label-error")).to_contain_text("A–Z, a–z, 0–9, - and _")
    page.fill("#room-label", "chat")
    page.click("#open-room button[type=submit]")
    expect(page.locator("#room-label-error")).to_contain_text("reserved")
    page.fill("#room-label", room)
    page.click("#open-room button[type=submit]")
    page.wait_for_url(f"{server.url}/{room}/")
    expect(page.locator("#status")).to_have_attribute("data-state", "live")


def test_message_written_while_server_is_down_is_sent_once_it_is_back(new_context):
    """The writer closes its tab while the server is down; its outbox survives in localStorage, and the next
    visit sends it. The reader stays open across the restart, reconnects by itself, and is told that the
    (memory) store lost the history it had seen."""
    restartable = RoomsServer(free_port())
    restartable.start()
    try:
        room = f"test-{uuid.uuid4().hex[:12]}"
        writer_context = new_context()
        writer = open_room(writer_context, restartable.url, room)
        reader = open_room(new_context(), restartable.url, room)
        send(writer, "ann", "before the restart")
        expect(reader.locator("#chat li .text")).to_have_text(["before the restart"], timeout=WAIT_MS)

        restartable.stop()
        for page in (writer, reader):
            expect(page.locator("#status")).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
            expect(page.locator("#status")).to_contain_text("Reconnecting in")
        send(writer, "ann", "while it was down")
        expect(writer.locator("#outbox li .text")).to_have_text("while it was down")
        writer.close()

        restartable.start()
        expect(reader.locator("#status")).to_have_attribute("data-state", "live", timeout=RECONNECT_WAIT_MS)
        expect(reader.locator("#gap-notice")).to_be_visible()
        writer = open_room(writer_context, restartable.url, room)
        for page in (writer, reader):
            expect(page.locator("#chat li .text").filter(has_text="while it was down")).to_have_count(
                1, timeout=WAIT_MS
            )
        expect(writer.locator("#outbox li")).to_have_count(0)
        assert writer.evaluate(f"localStorage.getItem('rooms:outbox:{room}')") is None
    finally:
        restartable.stop()


def test_a_server_stopping_with_1001_is_tried_again_every_second_not_with_growing_waits(new_context):
    """A 1001 close says the server is restarting: the page's waits stay at the first one's (the status
    counts down from 1 s each time) where the backoff would have grown to 2-4 s by the third."""
    restartable = RoomsServer(free_port())
    restartable.start()
    try:
        room = f"test-{uuid.uuid4().hex[:12]}"
        page = open_room(new_context(), restartable.url, room)
        expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        # The first five waits the page announces, as its status shows each when it begins.
        page.evaluate(
            """() => {
              window.waitsShown = [];
              const detail = document.getElementById("status-detail");
              new MutationObserver(() => {
                if (!detail.textContent || window.waitsShown.length === 5) return;
                window.waitsShown.push(detail.textContent);
                document.body.dataset.waitsShown = window.waitsShown.length;
              }).observe(detail, { childList: true, characterData: true, subtree: true });
            }"""
        )
        restartable.stop()
        expect(page.locator("body")).to_have_attribute("data-waits-shown", "5", timeout=WAIT_MS)
        assert page.evaluate("() => window.waitsShown") == [" in 1s"] * 5
        restartable.start()
        expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    finally:
        restartable.stop()


def test_a_page_whose_connection_drops_resumes_with_no_gap_and_no_duplicate(new_context, server, room):
    """The server keeps running (and keeps the room's history) while the page's path to it is cut."""
    proxy = ProxyThread(server.port)
    try:
        reader = open_room(new_context(), proxy.url, room)
        server.post(room, "ann", "one")
        expect(reader.locator("#chat li .text")).to_have_text(["one"], timeout=WAIT_MS)

        proxy.cut()
        expect(reader.locator("#status")).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
        server.post(room, "ann", "two")
        server.post(room, "bob", "three")
        proxy.restore()

        expect(reader.locator("#status")).to_have_attribute("data-state", "live", timeout=RECONNECT_WAIT_MS)
        expect(reader.locator("#chat li .text")).to_have_text(["one", "two", "three"], timeout=WAIT_MS)
        server.post(room, "bob", "four")
        expect(reader.locator("#chat li .text")).to_have_text(["one", "two", "three", "four"], timeout=WAIT_MS)
        expect(reader.locator("#gap-notice")).to_be_hidden()
    finally:
        proxy.close()


@pytest.mark.parametrize("path", ["/", "/{room}/"])
def test_pages_fit_a_phone_screen_and_the_room_works_there(browser, server, room, path):
    context = browser.new_context(viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True)
    context.set_default_timeout(WAIT_MS)
    try:
        server.post(room, "ann", "a message long enough to wrap " + "word " * 40 + "and-an-unbroken-" * 8)
        page = context.new_page()
        page.goto(server.url + path.format(room=room))
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        if path != "/":
            expect(page.locator("#status")).to_have_attribute("data-state", "live")
            send(page, "bob", "from a phone")
            expect(page.locator("#chat li .text").last).to_have_text("from a phone")
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()
