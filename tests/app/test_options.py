"""``OPTIONS`` answers 204 with the route's methods in ``Allow``, never 500; a path that is no route is 404."""

from __future__ import annotations

import pytest


async def options(http_client, port: int, path: str):
    return await http_client.fetch(f"http://127.0.0.1:{port}{path}", method="OPTIONS", raise_error=False)


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/", "GET, HEAD, OPTIONS"),
        ("/new", "GET, OPTIONS"),
        ("/lobby", "GET, OPTIONS"),
        ("/lobby/", "GET, HEAD, OPTIONS"),
        ("/api/rooms/lobby/messages", "GET, POST, OPTIONS"),
        ("/healthz", "GET, HEAD, OPTIONS"),
        ("/metrics", "GET, OPTIONS"),
        ("/chat/lobby/", "GET, OPTIONS"),
    ],
)
async def test_options_lists_the_methods_of_the_route(http_server, http_port, http_client, path, allow):
    response = await options(http_client, http_port, path)
    assert (response.code, response.headers.get("Allow")) == (204, allow)
    assert response.body == b""


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/nowhere/deeper", "/api/rooms/bad%20label/messages", "/chat/api/", "/api/"])
async def test_options_on_what_is_no_route_or_no_room_is_404(http_server, http_port, http_client, path):
    assert (await options(http_client, http_port, path)).code == 404
