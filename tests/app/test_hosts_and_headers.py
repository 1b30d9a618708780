"""What docs/security.md promises browsers of every answer, over real HTTP: which hosts are answered, the
headers every response carries, no caching of an answer to a URL with a credential, and what /healthz and
/metrics tell whom."""

from __future__ import annotations

import json
import logging

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from backends.errors import BackendUnavailable
from tests.support.apps import app_config
from tests.support.http import MESSAGES, fetch, post, stored

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


# -- server.allowed_hosts ------------------------------------------------------------------------------

ROUTES = ["/", "/lobby/", "/lobby", "/new", MESSAGES, "/healthz", "/metrics", "/static/rooms.css", "/nowhere"]
MONITORING = ("/healthz", "/metrics")


@pytest.mark.gen_test
@pytest.mark.parametrize("config", [app_config(server={"allowed_hosts": ["chat.example.org", "::1"]})])
async def test_a_host_not_allowed_gets_400_on_every_route(config, http_server, http_port, http_client):
    for path in [route for route in ROUTES if route not in MONITORING]:
        response = await fetch(http_client, http_port, path, headers={"Host": f"rebound.example:{http_port}"})
        assert response.code == 400, path
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{http_port}/chat/lobby/", headers={"Host": "evil"}))
    assert refused.value.code == 400
    posted = await post(http_client, http_port, {"Content-Type": "application/json", "Host": "127.0.0.1"})
    assert posted.code == 400
    assert await stored(http_client, http_port, host="chat.example.org") == []


@pytest.mark.gen_test
@pytest.mark.parametrize("config", [app_config(server={"allowed_hosts": ["chat.example.org"]})])
async def test_a_monitor_on_an_address_of_metrics_allowed_is_not_held_to_allowed_hosts(
    config, http_server, http_port, http_client
):
    # The monitor on the host asks by address (curl http://127.0.0.1:8000/healthz, a Prometheus scrape).
    for path in MONITORING:
        assert (await fetch(http_client, http_port, path)).code == 200, path
    assert (await fetch(http_client, http_port, "/")).code == 400  # only those routes
    # An address that may not read metrics is held to allowed_hosts there too (a proxy names the client).
    elsewhere = {"X-Forwarded-For": "203.0.113.9"}
    for path in MONITORING:
        assert (await fetch(http_client, http_port, path, headers=elsewhere)).code == 400, path


@pytest.mark.gen_test
@pytest.mark.parametrize("config", [app_config(server={"allowed_hosts": ["chat.example.org", "::1"]})])
async def test_allowed_hosts_match_without_port_or_case(config, http_server, http_port, http_client):
    for host in ("chat.example.org", f"CHAT.Example.org:{http_port}", "chat.example.org.", f"[::1]:{http_port}"):
        assert (await fetch(http_client, http_port, "/", headers={"Host": host})).code == 200, host
    ws = await websocket_connect(
        HTTPRequest(f"ws://127.0.0.1:{http_port}/chat/lobby/", headers={"Host": "chat.example.org"})
    )
    ws.close()


@pytest.mark.gen_test
async def test_without_allowed_hosts_any_host_is_served(http_server, http_port, http_client):
    assert (await fetch(http_client, http_port, "/", headers={"Host": "anything.example"})).code == 200


# -- the headers of every response ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_every_response_has_nosniff_the_pages_their_policy_and_none_a_server_header(
    http_server, http_port, http_client
):
    answers = {}
    for path in [*ROUTES, "/bad.label/", "/static/missing.js", "/api/rooms/lobby/messages?limit=0", "/chat/lobby/"]:
        answers[path] = await fetch(http_client, http_port, path)
    answers["OPTIONS /"] = await fetch(http_client, http_port, "/", method="OPTIONS")
    answers["DELETE /"] = await fetch(http_client, http_port, "/", method="DELETE")
    answers["POST"] = await post(http_client, http_port, {"Content-Type": "application/json"})
    answers["POST 415"] = await post(http_client, http_port, {"Content-Type": "text/plain"})
    assert {
        answers[p].code for p in ("/", "/lobby/", "/bad.label/", "/lobby", "/static/missing.js", "/chat/lobby/")
    } == {
        200,
        404,
        301,
        400,
    }
    for name, response in answers.items():
        assert response.headers.get("X-Content-Type-Options") == "nosniff", name
        assert "Server" not in response.headers, name
        if response.headers.get("Content-Type", "").startswith("text/html"):
            assert response.headers["Content-Security-Policy"] == CSP, name
            assert response.headers["Referrer-Policy"] == "same-origin", name
    for page in ("/", "/lobby/", "/nowhere"):
        assert answers[page].headers["Content-Type"].startswith("text/html")


@pytest.mark.gen_test
async def test_websocket_handshake_answers_have_nosniff_and_no_server_header(http_server, http_port):
    ws = await websocket_connect(f"ws://127.0.0.1:{http_port}/chat/lobby/")
    assert ws.headers["X-Content-Type-Options"] == "nosniff" and "Server" not in ws.headers
    ws.close()
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(
            HTTPRequest(f"ws://127.0.0.1:{http_port}/chat/lobby/", headers={"Origin": "http://evil"})
        )
    assert refused.value.code == 403
    assert refused.value.response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Server" not in refused.value.response.headers


# -- /healthz and /metrics -----------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_healthz_names_no_address_or_error_and_logs_the_reason(
    http_server, http_port, http_client, app, monkeypatch, caplog
):
    async def unreachable() -> None:
        raise BackendUnavailable("cannot reach 10.9.8.7:5432: password authentication failed")

    monkeypatch.setattr(app.hub, "health", unreachable)
    with caplog.at_level(logging.WARNING):
        response = await fetch(http_client, http_port, "/healthz")
    assert response.code == 503
    assert json.loads(response.body) == {"status": "unavailable", "backend": "memory"}
    assert b"10.9.8.7" not in response.body
    assert any("10.9.8.7" in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)


@pytest.mark.gen_test
async def test_metrics_answer_loopback_by_default(http_server, http_port, http_client):
    response = await fetch(http_client, http_port, "/metrics")
    assert response.code == 200 and b"rooms_messages_stored_total" in response.body


@pytest.mark.gen_test
@pytest.mark.parametrize("config", [app_config(server={"metrics_allowed": ["10.0.0.0/8"]})])
async def test_metrics_are_404_to_an_address_not_allowed_like_any_unknown_route(
    config, http_server, http_port, http_client
):
    response = await fetch(http_client, http_port, "/metrics")
    unknown = await fetch(http_client, http_port, "/no-such-route/at-all")
    assert (response.code, response.body) == (404, unknown.body)
    # The client's address, as a trusted proxy (loopback, by default) names it, is what counts.
    proxied = await fetch(http_client, http_port, "/metrics", headers={"X-Forwarded-For": "10.1.2.3"})
    assert proxied.code == 200


# -- a credential in the URL: no answer to it may be cached ----------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path",
    [
        "/lobby?token=abc.def.ghi",  # a 301 that repeats it in Location
        "/lobby?%74oken=abc.def.ghi",
        "/lobby/?tok%65n=abc.def.ghi",  # 401: not a token this server takes
        "/lobby?invite=AbCdEfGh",
        "/lobby/?%69nvite=AbCdEfGh",
        "/?invite=AbCdEfGh",
        "/nowhere?token=x",
        "/static/rooms.css?v=1&token=x",
        "/api/rooms/lobby/messages?Token=x",
    ],
)
async def test_every_answer_to_a_url_with_a_credential_is_no_store(http_server, http_port, http_client, path):
    response = await fetch(http_client, http_port, path)
    assert response.headers.get("Cache-Control") == "no-store", (response.code, dict(response.headers))


@pytest.mark.gen_test
async def test_answers_without_a_credential_may_be_cached(http_server, http_port, http_client):
    for path in ("/lobby", "/static/rooms.css?v=1", "/lobby/?tokens=4"):
        response = await fetch(http_client, http_port, path)
        assert response.headers.get("Cache-Control") != "no-store", path
