"""Reconciliation reads narrow slot ranges: one per source partition, merged when close."""

from __future__ import annotations

from pipelines.sink.rows import Source
from pipelines.sink.service import merge_ranges, slot_ranges


def test_ranges_per_partition_then_merged():
    srcs = [Source("flows", p, 0, 0, None, None) for p in (0, 0, 1, 1, 2)]
    ranges = slot_ranges([10, 12, 5_000_000, 4_999_000, 400], srcs)
    assert sorted(ranges) == [(10, 12), (400, 400), (4_999_000, 5_000_000)]
    assert merge_ranges(ranges) == [(10, 400), (4_999_000, 5_000_000)]
    assert merge_ranges(ranges, gap=0) == [(10, 12), (400, 400), (4_999_000, 5_000_000)]
    assert merge_ranges([]) == []
