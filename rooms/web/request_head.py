"""A connection's first request head, parsed as Tornado's HTTP/1 connection parses it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tornado.httputil import HTTPHeaders, HTTPInputError, parse_request_start_line


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    uri: str
    path: str
    query: str
    version: str
    headers: HTTPHeaders
    started: float  # time.time() once it was read, as Tornado stamps a request


def parse_head(data: bytes) -> RequestHead | None:
    """The head as Tornado's HTTP/1 connection parses it; None where Tornado would refuse it (400)."""
    text = data.decode("latin1").lstrip("\r\n")
    eol = text.find("\n")
    try:
        method, uri, version = parse_request_start_line(text[:eol].rstrip("\r"))
        headers = HTTPHeaders.parse(text[eol:])
    except HTTPInputError:
        return None
    path, _, query = uri.partition("?")
    return RequestHead(method, uri, path, query, version, headers, time.time())
