"""A request head read the cheap way where it is plain, and Tornado's way where it is not.

Tornado's ``HTTPHeaders.parse`` checks each line with two regular expressions and normalizes each name
three times as it stores it, and every lookup normalizes the name again: about a tenth of a join's CPU.
A head in the plain form nearly every client sends (CRLF line ends, each field once, nothing Tornado
would refuse) is checked here whole by one expression that accepts exactly the lines Tornado accepts,
and split without further checks. Anything else (a bare LF, a field sent twice, a line Tornado would
refuse) is parsed by Tornado as before, so the answer to an unusual head is Tornado's own.
"""

from __future__ import annotations

import re
import time
from typing import NamedTuple, overload

from tornado.httputil import HTTPHeaders, HTTPInputError, parse_request_start_line

# RFC 9110's token and field values, as Tornado's parser takes them (tornado.httputil._ABNF): a value is
# runs of visible characters (obs-text too) separated by spaces and tabs, with spaces and tabs around it.
_TCHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_VCHAR = r"[\x21-\x7e\x80-\xff]"
# Possessive, so that a line that does not match fails in linear time.
_FIELD = rf"{_TCHAR}++:[ \t]*+(?:{_VCHAR}++(?:[ \t]++{_VCHAR}++)*+)?+[ \t]*+\r\n"
PLAIN_HEAD = re.compile(rf"({_TCHAR}++) ({_VCHAR}++) (HTTP/1\.[0-9])\r\n((?:{_FIELD})*+)\r\n")
# As Tornado's HTTP/1 connection reads a head: up to the first empty line, CRLF or bare LF.
END_OF_HEAD = b"\r?\n\r?\n"


def end_of_head(data: bytes | bytearray) -> int | None:
    """Where ``END_OF_HEAD``'s search in ``data`` ends its match, None where it finds none. The search,
    which has no fixed first byte to skip ahead to, tries a match at every byte; two finds do not."""
    # Each match is a LF, then a LF or a CRLF; the first such LF starts the first match (a CR before it
    # is the match's own) and the bytes after it say which of the two ends it.
    lf_lf = data.find(b"\n\n")
    lf_crlf = data.find(b"\n\r\n")
    if lf_crlf != -1 and (lf_lf == -1 or lf_crlf < lf_lf):
        return lf_crlf + 3
    return None if lf_lf == -1 else lf_lf + 2


class Headers:
    """A head's fields by name, in any case, as ``HTTPHeaders`` reads them: a field sent more than once
    is its values joined by commas (``get_list`` gives them apart)."""

    __slots__ = ("_lists", "_values")

    def __init__(self, values: dict[str, str], lists: dict[str, list[str]] | None = None) -> None:
        self._values = values  # by lowercased name
        self._lists = lists  # only where some field came more than once

    @classmethod
    def of(cls, headers: HTTPHeaders) -> Headers:
        lists = {name.lower(): headers.get_list(name) for name in headers}
        return cls({name: ",".join(values) for name, values in lists.items()}, lists)

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._values

    def get_list(self, name: str) -> list[str]:
        if self._lists is not None:
            return list(self._lists.get(name.lower(), ()))
        value = self._values.get(name.lower())
        return [] if value is None else [value]


class RequestHead(NamedTuple):  # a tuple: a frozen dataclass sets each of its fields with a call
    method: str
    uri: str
    path: str
    query: str
    version: str
    headers: Headers
    started: float  # time.time() once it was read, as Tornado stamps a request


def parse_head(data: bytes) -> RequestHead | None:
    """The head as Tornado's HTTP/1 connection parses it; None where Tornado would refuse it (400)."""
    text = data.decode("latin1").lstrip("\r\n")
    plain = PLAIN_HEAD.fullmatch(text)
    if plain is None:
        return _parsed_by_tornado(text)
    method, uri, version, fields = plain.groups()
    values: dict[str, str] = {}
    for line in fields.split("\r\n")[:-1]:
        name, _, value = line.partition(":")
        name = name.lower()
        if name in values:  # a field sent twice: joined as Tornado joins it
            return _parsed_by_tornado(text)
        values[name] = value.strip(" \t")
    path, _, query = uri.partition("?")
    return RequestHead(method, uri, path, query, version, Headers(values), time.time())


def _parsed_by_tornado(text: str) -> RequestHead | None:
    eol = text.find("\n")
    try:
        method, uri, version = parse_request_start_line(text[:eol].rstrip("\r"))
        headers = HTTPHeaders.parse(text[eol:])
    except HTTPInputError:
        return None
    path, _, query = uri.partition("?")
    return RequestHead(method, uri, path, query, version, Headers.of(headers), time.time())
