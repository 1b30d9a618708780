"""The load generator's loopback source addresses: clients spread over 127.0.0.2-127.0.0.250, cycling."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.sources import SPREAD, local_addr, source_address


def test_clients_cycle_over_249_addresses_leaving_127_0_0_1_alone():
    used = Counter(source_address(index) for index in range(19_000))
    assert SPREAD == 249
    assert set(used) == {f"127.0.0.{host}" for host in range(2, 251)}
    # As even as 19,000 over 249 can be: 76 or 77 each.
    assert set(used.values()) == {76, 77}
    assert source_address(0) == "127.0.0.2" and source_address(248) == "127.0.0.250"
    assert source_address(249) == "127.0.0.2"


def test_a_smaller_spread_cycles_over_fewer_addresses():
    assert [source_address(index, spread=3) for index in range(5)] == [
        "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.2", "127.0.0.3",
    ]  # fmt: skip


@pytest.mark.parametrize("spread", [0, -1, 250])
def test_a_spread_outside_the_range_is_refused(spread: int):
    with pytest.raises(ValueError, match="spread must be 1 to 249"):
        source_address(0, spread)


def test_only_a_server_on_ipv4_loopback_gets_a_bound_source():
    assert local_addr("ws://127.0.0.1:8000", 5, SPREAD) == ("127.0.0.7", 0)
    assert local_addr("ws://127.0.0.1:8000", 5, 0) is None
    assert local_addr("ws://[::1]:8000", 5, SPREAD) is None
    assert local_addr("ws://localhost:8000", 5, SPREAD) is None
    assert local_addr("ws://192.0.2.10:8000", 5, SPREAD) is None
