"""Tornado's frame formats are compiled into struct's cache before any socket: compiled at their first use,
during a crowd, they would outlive it among its memory arenas."""

from __future__ import annotations

import gc
import inspect
import re
import struct
import tracemalloc

import tornado.websocket

from rooms.web.frame_protocol import TORNADO_FORMATS, compile_tornado_formats


def test_every_format_tornados_frames_use_is_compiled():
    used = set(re.findall(r'struct\.(?:un)?pack\("([^"]+)"', inspect.getsource(tornado.websocket)))
    assert used and used <= set(TORNADO_FORMATS)


def test_finding_them_afterwards_makes_nothing_that_stays():
    struct._clearcache()
    compile_tornado_formats()
    sizes = [0] * len(TORNADO_FORMATS)
    gc.collect()
    tracemalloc.start()
    try:
        for index in range(len(TORNADO_FORMATS)):
            sizes[index] = struct.calcsize(TORNADO_FORMATS[index])  # as pack and unpack find them
        left = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, __file__)])
    finally:
        tracemalloc.stop()
    assert left.statistics("lineno") == []
    assert sizes == [1, 2, 3, 9, 2, 8, 2]
