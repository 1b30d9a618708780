"""What the rate policy keeps for addresses that have gone is let go once they have (``RatePolicy.forget_idle``):
a bucket no different from a new one, the addresses' keys parsed, and the storage of the tables that held a
crowd; what still limits anyone (an address's open socket, a bucket not yet refilled) is kept."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator

import pytest

import backends.token_bucket
import rooms.access.addresses
import rooms.room.rates
from backends.address_blocks import AddressBlocks
from rooms.access.addresses import limit_key
from rooms.room.rates import RatePolicy

CROWD = 5000


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def kept_bytes() -> int:
    """What the rate policy's modules allocated and still hold (buckets, tables, the keys parsed)."""
    modules = (rooms.room.rates, backends.token_bucket, rooms.access.addresses)
    filters = [tracemalloc.Filter(True, module.__file__ or "") for module in modules]
    return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces(filters).statistics("filename"))


def address(number: int) -> str:
    return f"10.{number // 65536}.{number // 256 % 256}.{number % 256}"


def test_a_crowds_buckets_keys_and_tables_are_let_go_once_it_has_gone(traced):
    limit_key.cache_clear()
    rates = RatePolicy(10, 20, 10, 20, 5, AddressBlocks())
    empty = kept_bytes()
    senders = []
    for number in range(CROWD):  # a crowd that joins and says nothing, as most of a big room does
        assert rates.open_connection(address(number))
        senders.append(rates.for_connection(address(number)))
    for number in range(CROWD):
        rates.close_connection(address(number))
    senders.clear()
    assert rates.addresses_remembered() == CROWD
    assert kept_bytes() - empty > 100 * CROWD
    rates.forget_idle()
    # As the server follows it (rooms.service.collector): a full collection also empties Python's free
    # lists, which keep freed tuples and the like, as allocated, for the next.
    gc.collect()
    assert rates.addresses_remembered() == 0
    assert limit_key.cache_info().currsize == 0
    assert kept_bytes() - empty < 4096  # the crowd's storage went with it, not only its entries


def test_an_address_with_a_socket_open_keeps_its_bucket_shared_by_its_sockets():
    rates = RatePolicy(1000, 1000, 0.001, 2, 5, AddressBlocks())
    assert rates.open_connection("192.0.2.1")
    first = rates.for_connection("192.0.2.1")
    rates.forget_idle()  # its bucket is full, but its socket holds it
    assert rates.addresses_remembered() == 1
    assert first.take() and first.take()
    assert not rates.for_connection("192.0.2.1").take()  # a second socket shares the emptied bucket


def test_a_bucket_not_yet_refilled_is_kept_after_its_address_left():
    rates = RatePolicy(1000, 1000, 0.001, 1, 5, AddressBlocks())
    assert rates.open_connection("192.0.2.1")
    assert rates.for_connection("192.0.2.1").take()
    rates.close_connection("192.0.2.1")
    rates.forget_idle()
    assert rates.addresses_remembered() == 1
    assert not rates.for_request("192.0.2.1").take()  # leaving and coming back refills nothing


def test_searches_refilled_are_forgotten_and_those_spent_are_not():
    clock = [100.0]
    rates = RatePolicy(10, 10, 10, 10, 5, AddressBlocks(), searches_per_minute=2, clock=lambda: clock[0])
    assert rates.take_search("192.0.2.1") and rates.take_search("192.0.2.1")
    rates.forget_idle()
    assert not rates.take_search("192.0.2.1")  # its minute's searches are still spent
    clock[0] += 60
    rates.forget_idle()
    assert rates.take_search("192.0.2.1") and rates.take_search("192.0.2.1")
