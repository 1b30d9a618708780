"""The server-rendered pages: what the home page, the room page and the error page contain, and that
every static file they link is served."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from tornado.httpclient import HTTPResponse

XSS_HANDLE = "<script>alert('h')</script>"
XSS_MESSAGE = '</li><script>alert("m")</script><img src=x onerror=alert(1)>'


class PageOutline(HTMLParser):
    """The parts of a page the tests look at: elements by id, static files, and the message list."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: dict[str, dict[str, str | None]] = {}
        self.tags: dict[str, list[dict[str, str | None]]] = {}
        self.static_urls: list[str] = []
        self.messages: list[dict[str, str]] = []
        self._open: list[str] = []  # class names of the open elements inside a message

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.setdefault(tag, []).append(attributes)
        if attributes.get("id"):
            self.ids[str(attributes["id"])] = {"tag": tag, **attributes}
        for name in ("href", "src"):
            value = attributes.get(name)
            if value and value.startswith("/static/"):
                self.static_urls.append(value)
        if tag == "li" and "data-id" in attributes and self._in_chat():
            self.messages.append({"id": str(attributes["data-id"]), "handle": "", "text": "", "time": ""})
        if tag == "time" and self.messages and self._open:
            self.messages[-1]["time"] = str(attributes.get("datetime"))
        if tag not in ("input", "img", "br", "meta", "link"):
            self._open.append(str(attributes.get("class") or attributes.get("id") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("input", "img", "br", "meta", "link") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self.messages and self._in_chat():
            for field, css_class in (("handle", "handle"), ("text", "text")):
                if self._open and self._open[-1] == css_class:
                    self.messages[-1][field] += data

    def _in_chat(self) -> bool:
        return "messages" in " ".join(self._open) and "outbox" not in " ".join(self._open)


def outline_of(body: str) -> PageOutline:
    parser = PageOutline()
    parser.feed(body)
    return parser


def outline(response: HTTPResponse) -> PageOutline:
    return outline_of(response.body.decode("utf-8"))


async def post(http_client, base_url: str, room: str, handle: str, message: str) -> dict:
    response = await http_client.fetch(
        f"{base_url}/api/rooms/{room}/messages",
        method="POST",
        body=json.dumps({"handle": handle, "message": message}),
        headers={"Content-Type": "application/json"},
    )
    assert response.code == 201
    return json.loads(response.body)


@pytest.mark.gen_test
async def test_home_page_has_the_open_form_and_the_new_room_button(http_client, base_url):
    response = await http_client.fetch(base_url + "/")
    page = outline(response)
    assert response.headers["Content-Type"].startswith("text/html")
    assert page.ids["open-room"]["tag"] == "form"
    assert page.ids["room-label"]["tag"] == "input"
    assert page.ids["room-label"]["pattern"] == r"[A-Za-z0-9_\-]{1,50}"
    assert any(form.get("action") == "/new" for form in page.tags["form"])
    assert "No one has said anything yet" in response.body.decode()


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/", "/lobby/", "/healthz"])
async def test_head_answers_like_get_without_a_body(http_client, base_url, path):
    response = await http_client.fetch(base_url + path, method="HEAD")
    assert response.code == 200
    assert response.body == b""


@pytest.mark.gen_test
async def test_the_open_form_works_without_javascript(http_client, base_url):
    opened = await http_client.fetch(base_url + "/?room=lobby", follow_redirects=False, raise_error=False)
    assert (opened.code, opened.headers["Location"]) == (302, "/lobby/")
    for typed in ("no spaces", "chat", "<b>x</b>"):
        refused = await http_client.fetch(base_url + "/?" + urlencode({"room": typed}), raise_error=False)
        assert refused.code == 400
        page = outline(refused)
        assert "is not a room name" in refused.body.decode()
        assert page.ids["room-label"]["value"] == typed
    assert "<b>x</b>" not in refused.body.decode()


@pytest.mark.gen_test
async def test_home_page_lists_the_busiest_rooms_with_their_counts(http_client, base_url):
    for room, count in (("quiet", 1), ("busy", 3)):
        for n in range(count):
            await post(http_client, base_url, room, "ann", f"message {n}")
    body = (await http_client.fetch(base_url + "/")).body.decode()
    links = [a["href"] for a in outline_of(body).tags["a"] if a.get("class") == "room-link"]
    assert links == ["/busy/", "/quiet/"]
    assert "3 messages" in body and "1 message<" in body


@pytest.mark.gen_test
async def test_room_page_keeps_the_seed_element_ids(http_client, base_url):
    page = outline(await http_client.fetch(base_url + "/lobby/"))
    assert page.ids["chatform"]["tag"] == "form"
    assert page.ids["handle"]["tag"] == "input"
    assert page.ids["message"]["tag"] in ("input", "textarea")
    assert page.ids["chat"]["tag"] in ("ol", "ul")
    assert page.ids["status"]["aria-live"] == "polite"
    assert page.ids["handle"]["maxlength"] == "32" and page.ids["message"]["maxlength"] == "4000"


@pytest.mark.gen_test
async def test_room_page_renders_history_oldest_first_and_passes_the_newest_id(http_client, base_url):
    empty = outline(await http_client.fetch(base_url + "/lobby/"))
    assert empty.ids["chat"]["data-newest-id"] == "0" and empty.messages == []
    sent = [await post(http_client, base_url, "lobby", "ann", text) for text in ("first", "second", "third\nline")]
    page = outline(await http_client.fetch(base_url + "/lobby/"))
    assert [m["text"] for m in page.messages] == ["first", "second", "third\nline"]
    assert [m["id"] for m in page.messages] == [m["id"] for m in sent]
    assert [m["time"] for m in page.messages] == [m["timestamp"] for m in sent]
    assert page.ids["chat"]["data-newest-id"] == sent[-1]["id"]
    assert page.ids["chat"]["data-room"] == "lobby"


@pytest.mark.gen_test
async def test_room_page_escapes_markup_in_handle_and_message(http_client, base_url):
    await post(http_client, base_url, "lobby", XSS_HANDLE, XSS_MESSAGE)
    body = (await http_client.fetch(base_url + "/lobby/")).body.decode()
    assert "<script>alert" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(&#x27;h&#x27;)&lt;/script&gt;" in body
    page = outline_of(body)
    assert page.messages[-1]["handle"] == XSS_HANDLE and page.messages[-1]["text"] == XSS_MESSAGE
    assert "img" not in page.tags


@pytest.mark.gen_test
async def test_every_linked_static_file_is_served(http_client, base_url):
    urls: set[str] = set()
    for path in ("/", "/lobby/", "/no.such.room/"):
        response = await http_client.fetch(base_url + path, raise_error=False)
        urls.update(outline(response).static_urls)
    names = {url.split("?")[0] for url in urls}
    assert {"/static/rooms.css", "/static/rooms.js", "/static/home.js"} <= names
    for url in sorted(urls):
        assert "?v=" in url, "static_url() versions each file so browsers can cache it"
        response = await http_client.fetch(base_url + url)
        assert response.code == 200 and response.body


@pytest.mark.gen_test
async def test_unknown_page_renders_the_error_page(http_client, base_url):
    response = await http_client.fetch(base_url + "/no.such.room/", raise_error=False)
    body = response.body.decode()
    assert response.code == 404
    assert "404" in body and "Not found" in body and 'href="/"' in body


@pytest.mark.gen_test
async def test_handles_and_messages_are_shown_isolated_in_their_own_direction(http_client, base_url):
    await post(http_client, base_url, "lobby", "\u05d3\u05e0\u05d4", "\u202eright to left")
    page = outline(await http_client.fetch(base_url + "/lobby/"))
    handles = [tag for tag in page.tags["span"] if tag.get("class") == "handle"]
    texts = [tag for tag in page.tags["div"] if tag.get("class") == "text"]
    assert len(handles) == len(texts) == 2  # the message, and the blank the script clones for live ones
    assert all(tag.get("dir") == "auto" for tag in handles + texts)
