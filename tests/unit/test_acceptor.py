"""A connection the acceptor hands over is the socket ``socket.accept()`` would have made of it, on every
kind of listening socket the server may be given."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Callable

import pytest
from tornado.ioloop import IOLoop

from rooms.web.listener import accept_connections


def listening(family: socket.AddressFamily, where: object) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(where)
    sock.listen()
    sock.setblocking(False)  # as Tornado's bind_sockets leaves it
    return sock


def unix_path() -> str:
    return os.path.join(tempfile.mkdtemp(), "listen.sock")


KINDS: list[tuple[socket.AddressFamily, Callable[[], object]]] = [
    (socket.AF_INET, lambda: ("127.0.0.1", 0)),
    (socket.AF_INET6, lambda: ("::1", 0)),
    (socket.AF_UNIX, unix_path),
]


async def readable(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(sock, ready.set_result, None)
    try:
        await asyncio.wait_for(ready, 5)
    finally:
        loop.remove_reader(sock)


def described(sock: socket.socket) -> tuple[object, ...]:
    return (sock.family, sock.type, sock.proto, sock.gettimeout(), sock.getsockname())


@pytest.mark.parametrize(("family", "where"), KINDS, ids=["ipv4", "ipv6", "unix"])
@pytest.mark.gen_test
async def test_a_connection_is_accepted_as_socket_accept_makes_it(
    io_loop: IOLoop, family: socket.AddressFamily, where: Callable[[], object]
) -> None:
    try:
        listener = listening(family, where())
    except OSError:
        pytest.skip(f"no {family.name} here")
    by_accept = socket.socket(family, socket.SOCK_STREAM)
    by_acceptor = socket.socket(family, socket.SOCK_STREAM)
    try:
        by_accept.connect(listener.getsockname())
        await readable(listener)
        expected, expected_address = listener.accept()
        handed: asyncio.Future[tuple[socket.socket, object]] = asyncio.get_running_loop().create_future()
        stop = accept_connections(listener, lambda sock, address: handed.set_result((sock, address)))
        by_acceptor.connect(listener.getsockname())
        accepted, address = await asyncio.wait_for(handed, 5)
        stop()
        assert described(accepted) == described(expected)
        assert type(accepted) is type(expected)
        if family != socket.AF_UNIX:  # a client's own address, which differs between the two
            assert address == by_acceptor.getsockname()
            assert expected_address == by_accept.getsockname()
        else:
            assert address == expected_address
        by_acceptor.sendall(b"marker")
        await readable(accepted)
        assert accepted.recv(6) == b"marker"
        accepted.close()
        expected.close()
    finally:
        by_accept.close()
        by_acceptor.close()
        listener.close()
