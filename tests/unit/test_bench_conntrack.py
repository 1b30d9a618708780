"""The connection-tracking table's drops, read from the kernel's statistics: one row a CPU, in hex."""

from __future__ import annotations

from bench.conntrack import drops_in

# /proc/net/stat/nf_conntrack on a 2-core machine whose table had filled during a big room's round.
STATISTICS = (
    "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error"
    "  expect_new expect_create expect_delete search_restart\n"
    "0003be7f  00000000 00000000 00000000 00000002 00000000 00000000 00000000 00000000 00000000 00000283"
    " 00000001 00000000  00000000 00000000 00000000 00000000\n"
    "0003be7f  00000000 00000000 00000000 00000040 00000000 00000000 00000000 00000000 00000000 00000547"
    " 00000000 00000000  00000000 00000000 00000000 00000000\n"
)


def test_the_drops_of_every_cpu_are_summed_from_hex():
    assert drops_in(STATISTICS) == 0x283 + 0x547 == 1994


def test_no_drop_reads_zero():
    header = STATISTICS.split("\n")[0]
    row = " ".join(["0003be7f"] + ["00000000"] * 16)
    assert drops_in(f"{header}\n{row}\n{row}\n") == 0
