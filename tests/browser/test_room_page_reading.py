"""The room page as a reader sees it: scrollback, links, the unread count of a hidden tab, mentions. In a real
headless Chromium against ``server.py`` running as a real process (the fixtures of ``tests/browser/conftest.py``)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import hide, named, open_room, post_many, send, show

pytestmark = pytest.mark.timeout(180)


FIRST_VISIBLE = """() => {
    const log = document.getElementById("log");
    const top = log.getBoundingClientRect().top;
    const item = [...document.querySelectorAll("#chat > li")].find((li) => li.getBoundingClientRect().bottom > top);
    return { id: item.dataset.id, top: item.querySelector(".text").getBoundingClientRect().top };
}"""

SCROLL_TO_TOP = f"""() => {{
    document.getElementById("log").scrollTop = 0;
    return ({FIRST_VISIBLE})();
}}"""


def test_scrolling_to_the_top_loads_older_messages_in_place_until_the_beginning(new_context, server, room):
    texts = [f"message {n}" for n in range(130)]
    post_many(server, room, texts)
    page = open_room(new_context(), server.url, room)
    history_requests: list[str] = []
    page.on("request", lambda request: history_requests.append(request.url) if "/api/rooms/" in request.url else None)
    expect(page.locator("#chat > li")).to_have_count(50)
    expect(page.locator("#room-start")).to_be_hidden()

    shown = 50
    while page.locator("#room-start").is_hidden():
        at_top = page.evaluate(SCROLL_TO_TOP)  # the first message on screen once at the top, and where it is
        expect(page.locator("#chat > li")).not_to_have_count(shown)
        shown = page.locator("#chat > li").count()
        where = "id => document.querySelector(`#chat > li[data-id='${id}'] .text`).getBoundingClientRect().top"
        now = page.evaluate(where, at_top["id"])
        assert abs(now - at_top["top"]) <= 3, (now, at_top)
        assert len(history_requests) <= 3

    assert shown == 130
    expect(page.locator("#chat > li .text")).to_have_text(texts)
    ids = page.locator("#chat > li").evaluate_all("items => items.map((li) => li.dataset.id)")
    assert len(set(ids)) == 130
    # Two pages of 50 and 30, each asked for once, before the oldest message shown then.
    assert len(history_requests) == 2 and all("limit=50" in url and "before=" in url for url in history_requests)
    expect(page.locator("#older")).to_be_hidden()
    # At the top with everything shown, a scroll asks for nothing more. The marker is a request made from the
    # same scroll event by a listener added after the page's own: one the page made would be sent before it.
    with page.expect_request(lambda request: "after-the-scroll" in request.url):
        scrolled_from = page.evaluate(
            """() => {
                const log = document.getElementById("log");
                log.addEventListener("scroll", () => fetch("/healthz?after-the-scroll"), { once: true });
                const from = log.scrollTop;
                log.scrollTop = 0;
                return from;
            }"""
        )
        assert scrolled_from > 0  # a scroll event is due
    assert len(history_requests) == 2


def test_older_messages_that_fail_to_load_can_be_tried_again(new_context, server, room):
    texts = [f"message {n}" for n in range(60)]
    post_many(server, room, texts)
    page = open_room(new_context(), server.url, room)
    page.route("**/api/rooms/**", lambda route: route.fulfill(status=503, body='{"error": "down"}'))
    page.evaluate("document.getElementById('log').scrollTop = 0")
    expect(page.locator("#older-failed")).to_be_visible()
    expect(page.locator("#older")).to_have_text("Try again")
    page.unroute("**/api/rooms/**")
    page.focus("#older")
    page.keyboard.press("Enter")
    expect(page.locator("#room-start")).to_be_visible()
    expect(page.locator("#older-failed")).to_be_hidden()
    expect(page.locator("#chat > li .text")).to_have_text(texts)


def test_addresses_become_links_and_markup_or_other_schemes_do_not(new_context, server, room):
    message = (
        "see https://example.org/wiki/Tornado_(web_server). or (http://example.com/a?b=1), "
        "not javascript:alert(document.domain) nor data:text/html,<b>x</b> "
        "<script>document.body.dataset.xss='s'</script><img src=x onerror=\"document.body.dataset.xss='i'\">"
    )
    server.post(room, "ann", message)
    context = new_context()
    violations: list[str] = []
    context.on("console", lambda line: violations.append(line.text) if "Content Security Policy" in line.text else None)
    page = open_room(context, server.url, room)
    server.post(room, "bob", message)
    expect(page.locator("#chat > li")).to_have_count(2)
    for item in (page.locator("#chat > li").first, page.locator("#chat > li").last):  # rendered, then live
        expect(item.locator(".text")).to_have_text(message)
        links = item.locator(".text a")
        expect(links).to_have_count(2)
        assert [links.nth(n).get_attribute("href") for n in range(2)] == [
            "https://example.org/wiki/Tornado_(web_server)",
            "http://example.com/a?b=1",
        ]
        assert links.all_inner_texts() == ["https://example.org/wiki/Tornado_(web_server)", "http://example.com/a?b=1"]
        for n in range(2):
            assert links.nth(n).get_attribute("rel") == "noopener noreferrer"
            assert links.nth(n).get_attribute("target") == "_blank"
    unwanted = "#chat script, #chat img, #chat b, #chat a[href^='javascript'], #chat a[href^='data']"
    assert page.locator(unwanted).count() == 0
    assert page.evaluate("document.body.dataset.xss") is None
    assert violations == []


def test_the_title_of_a_hidden_tab_counts_new_messages_from_others(new_context, server, room):
    reader = open_room(new_context(), server.url, room)
    named(reader, "dan")
    title = f"{room} · rooms"
    assert reader.title() == title
    hide(reader)
    for text in ("one", "two", "three"):
        server.post(room, "ann", text)
    expect(reader).to_have_title(f"(3) {title}")
    # Screen readers hear of them too, briefly; the region is polite.
    expect(reader.locator("#announcer")).to_contain_text("ann: three")
    assert reader.locator("#announcer").get_attribute("aria-live") == "polite"
    send(reader, "dan", "my own, not unread")
    expect(reader.locator("#chat > li .text").last).to_have_text("my own, not unread")
    assert reader.title() == f"(3) {title}"
    assert "my own" not in reader.locator("#announcer").inner_text()
    show(reader)
    expect(reader).to_have_title(title)
    server.post(room, "ann", "read as it comes")
    expect(reader.locator("#chat > li .text").last).to_have_text("read as it comes")
    assert reader.title() == title


# A stand-in for the Notification API that records what the page does with it: headless Chromium has no
# desktop to show notifications on.
FAKE_NOTIFICATIONS = """
window.__asked = 0;
window.__notified = [];
window.Notification = class {
    static permission = "default";
    static requestPermission() {
        window.__asked += 1;
        window.Notification.permission = "granted";
        return Promise.resolve("granted");
    }
    constructor(title, options) { window.__notified.push([title, options.body]); }
    addEventListener() {}
    close() {}
};
"""


def test_a_mention_is_highlighted_and_notified_only_once_allowed(new_context, server, room):
    for text in ("hey @Dan, look", "dan without the at", "mail dan@example.org", "@danny is not dan", "(@dan)"):
        server.post(room, "ann", text)
    context = new_context()
    context.add_init_script(FAKE_NOTIFICATIONS)
    page = open_room(context, server.url, room)
    named(page, "dan")
    items = page.locator("#chat > li")
    expect(items).to_have_count(5)
    assert [("mention" in (items.nth(n).get_attribute("class") or "")) for n in range(5)] == [
        True, False, False, False, True,
    ]  # fmt: skip
    assert page.locator("#chat > li.mention").first.evaluate("li => getComputedStyle(li).backgroundColor") not in (
        "rgba(0, 0, 0, 0)",
        "transparent",
    )
    server.post(room, "ann", "@DAN live")
    expect(page.locator("#chat > li").last).to_have_class(re.compile(r"\bmention\b"))

    # Never asked on load; asked when the reader presses the button.
    assert page.evaluate("window.__asked") == 0
    hide(page)
    server.post(room, "ann", "@dan not yet allowed")
    expect(items).to_have_count(7)
    assert page.evaluate("window.__notified") == []
    show(page)
    page.get_by_role("button", name="Notify me of mentions").click()
    expect(page.locator("#notify-mentions")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.__asked") == 1
    server.post(room, "ann", "@dan while you look")
    expect(items).to_have_count(8)
    hide(page)
    server.post(room, "ann", "@dan while away")
    server.post(room, "ann", "not a mention")
    expect(items).to_have_count(10)
    assert page.evaluate("window.__notified") == [[f"ann mentioned you in #{room}", "@dan while away"]]

    # Another name: the highlight follows it.
    named(page, "ann")
    expect(page.locator("#chat > li.mention")).to_have_count(0)
