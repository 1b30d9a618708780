"""The HTTP routes: messages API paging and errors, redirects, health and metrics."""

from __future__ import annotations

import json

import pytest

from tests.support.messages import post as post_message


async def get(http_client, port: int, path: str):
    return await http_client.fetch(f"http://127.0.0.1:{port}{path}", raise_error=False, follow_redirects=False)


JSON_TYPE = {"Content-Type": "application/json"}


async def post(http_client, port: int, path: str, body: str | bytes, headers: dict[str, str] | None = None):
    return await http_client.fetch(
        f"http://127.0.0.1:{port}{path}",
        method="POST",
        body=body,
        headers=JSON_TYPE if headers is None else headers,
        raise_error=False,
    )


async def fill(app, room: str, count: int) -> list[str]:
    return [(await post_message(app.hub, room, "ann", f"m{n}")).message.id for n in range(count)]


def body(response) -> dict:
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


@pytest.mark.gen_test
async def test_newest_page_by_default_oldest_first(http_server, http_port, http_client, app):
    ids = await fill(app, "lobby", 60)
    answer = body(await get(http_client, http_port, "/api/rooms/lobby/messages"))
    assert answer["room"] == "lobby"
    assert [m["id"] for m in answer["messages"]] == ids[-50:]
    assert answer["has_more"] is True
    assert set(answer["messages"][0]) == {"type", "id", "room", "handle", "message", "timestamp"}


@pytest.mark.gen_test
async def test_limit_before_and_after(http_server, http_port, http_client, app):
    ids = await fill(app, "lobby", 10)
    newest = body(await get(http_client, http_port, "/api/rooms/lobby/messages?limit=3"))
    assert [m["id"] for m in newest["messages"]] == ids[7:] and newest["has_more"]
    older = body(await get(http_client, http_port, f"/api/rooms/lobby/messages?limit=3&before={ids[7]}"))
    assert [m["id"] for m in older["messages"]] == ids[4:7] and older["has_more"]
    first = body(await get(http_client, http_port, f"/api/rooms/lobby/messages?limit=5&before={ids[3]}"))
    assert [m["id"] for m in first["messages"]] == ids[:3] and not first["has_more"]
    newer = body(await get(http_client, http_port, f"/api/rooms/lobby/messages?limit=4&after={ids[2]}"))
    assert [m["id"] for m in newer["messages"]] == ids[3:7] and newer["has_more"]
    last = body(await get(http_client, http_port, f"/api/rooms/lobby/messages?limit=4&after={ids[7]}"))
    assert [m["id"] for m in last["messages"]] == ids[8:] and not last["has_more"]


@pytest.mark.gen_test
async def test_unvisited_room_exists_and_is_empty(http_server, http_port, http_client):
    answer = body(await get(http_client, http_port, "/api/rooms/fresh_room-1/messages"))
    assert answer == {"room": "fresh_room-1", "messages": [], "has_more": False}


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=201", "limit=abc", "limit=-1", "limit=", "before=abc", "after=1.5", "before=1&after=2"],
)
async def test_bad_query_is_400_with_error(http_server, http_port, http_client, query):
    response = await get(http_client, http_port, f"/api/rooms/lobby/messages?{query}")
    assert response.code == 400
    assert body(response)["error"]


@pytest.mark.gen_test
async def test_limit_bounds_are_inclusive(http_server, http_port, http_client, app):
    await fill(app, "lobby", 3)
    assert len(body(await get(http_client, http_port, "/api/rooms/lobby/messages?limit=1"))["messages"]) == 1
    assert len(body(await get(http_client, http_port, "/api/rooms/lobby/messages?limit=200"))["messages"]) == 3


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path", ["/api/rooms/bad.label/messages", "/api/rooms/new/messages", "/api/rooms/" + "x" * 51 + "/messages"]
)
async def test_invalid_label_in_api_is_404(http_server, http_port, http_client, path):
    response = await get(http_client, http_port, path)
    assert response.code == 404
    assert body(response)["error"]


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/api/", "/api/nothing", "/api/rooms/lobby/nothing", "/api/rooms/lobby/messages/1/x"])
async def test_an_unknown_api_path_is_a_json_404(http_server, http_port, http_client, path):
    response = await get(http_client, http_port, path)
    assert (response.code, response.headers["Content-Type"]) == (404, "application/json; charset=utf-8")
    assert body(response) == {"error": "Not found"}


@pytest.mark.gen_test
async def test_post_stores_and_returns_201(http_server, http_port, http_client):
    response = await post(http_client, http_port, "/api/rooms/lobby/messages", '{"handle": "bot", "message": "hi"}')
    assert response.code == 201
    stored = body(response)
    assert (stored["type"], stored["room"], stored["handle"], stored["message"]) == ("message", "lobby", "bot", "hi")
    listed = body(await get(http_client, http_port, "/api/rooms/lobby/messages"))["messages"]
    assert listed == [stored]


@pytest.mark.gen_test
async def test_post_with_resent_client_id_returns_the_stored_message(http_server, http_port, http_client):
    payload = '{"handle": "bot", "message": "once", "client_id": "p-1"}'
    first = await post(http_client, http_port, "/api/rooms/lobby/messages", payload)
    again = await post(http_client, http_port, "/api/rooms/lobby/messages", payload)
    assert (first.code, again.code) == (201, 201)
    assert body(first) == body(again)
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("payload", "mentions"),
    [
        ("not json", "JSON"),
        ("[1, 2]", "object"),
        ('{"handle": "bot"}', "message"),
        ('{"handle": "", "message": "x"}', "handle"),
        ('{"handle": "bot", "message": 5}', "message"),
        ('{"handle": "bot", "message": "' + "x" * 4001 + '"}', "message"),
        (b"\xff\xfe", "JSON"),
        ("[" * 20_000 + "]" * 20_000, "nested too deeply"),
        ('{"handle": "bot", "message": "hi", "extra": ' + "[" * 20_000 + "]" * 20_000 + "}", "nested too deeply"),
    ],
)
async def test_post_bad_input_is_400_naming_the_problem(http_server, http_port, http_client, payload, mentions):
    response = await post(http_client, http_port, "/api/rooms/lobby/messages", payload)
    assert response.code == 400
    assert mentions in body(response)["error"]
    assert body(await get(http_client, http_port, "/api/rooms/lobby/messages"))["messages"] == []


@pytest.mark.gen_test
async def test_label_without_slash_redirects_permanently(http_server, http_port, http_client):
    response = await get(http_client, http_port, "/lobby")
    assert response.code == 301
    assert response.headers["Location"] == "/lobby/"


@pytest.mark.gen_test
async def test_new_redirects_to_a_fresh_random_room(http_server, http_port, http_client):
    first = await get(http_client, http_port, "/new")
    second = await get(http_client, http_port, "/new")
    assert first.code == 302
    location = first.headers["Location"]
    assert location.startswith("/") and location.endswith("/") and location != second.headers["Location"]
    room = await get(http_client, http_port, location)
    assert room.code == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/bad.label/", "/" + "x" * 51 + "/", "/api/", "/static/", "/chat/", "/a/b/"])
async def test_invalid_pages_are_404_not_500(http_server, http_port, http_client, path):
    assert (await get(http_client, http_port, path)).code == 404


@pytest.mark.gen_test
async def test_healthz_reports_backend_kind(http_server, http_port, http_client):
    response = await get(http_client, http_port, "/healthz")
    assert response.code == 200
    assert body(response) == {"status": "ok", "backend": "memory"}


@pytest.mark.gen_test
async def test_metrics_are_prometheus_text_and_count_messages(http_server, http_port, http_client, app):
    await fill(app, "lobby", 2)
    response = await get(http_client, http_port, "/metrics")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.body.decode()
    assert "# TYPE rooms_messages_stored_total counter" in text
    assert "rooms_messages_stored_total 2.0" in text
