"""Holes in a partition's offsets: read them again instead of stepping over them.

WHY: the offsets of depinflow's topics are dense (no compaction, no transactions), so a consumer
that hands out offset N+2 after N saw a partial view of the log. Seen with tansu's memory storage in
bench/e2e.py (2026-11-26): the sink's consumer never handed out flows partition 0 offset 9497 (a later
read of the log had it); the sink committed past it, and one flow event never reached ClickHouse.
tansu's object-store storage (tansu-io/tansu, tansu-storage/src/dynostore.rs) allocates a produce
request's offsets by advancing the partition's high watermark first and stores the batch object after;
a fetch lists the batch objects below the high watermark and returns them from the requested offset
without checking that they are contiguous. So while two producers write one partition (the listener
and its backfill workers each have one), a fetch can see the later batch before the earlier one is
stored, and a broker killed between the two steps leaves the hole for good. Real Kafka assigns offsets
as it appends, under the partition's lock. The sink now takes the records before a hole, seeks back to
the hole and fetches again. A hole still there after `retry_seconds` is taken as real (retention deleted
records the group had not read yet, or someone else's topic with transactions or compaction): the
sink moves on and reports the offsets it could not read, loudly, never silently.

Where a partition starts (the first records after an assignment) is not checked: the sink does not
know the committed offset there for every client, and librdkafka may legitimately reset it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from kafka import TopicPartition

RETRY_SECONDS = 5.0


@dataclass
class Hole:
    """Offsets [start, end) the consumer did not hand out, first seen at `since` (monotonic)."""

    start: int
    end: int
    since: float


@dataclass
class Verdict:
    """What to do with one partition's records of a poll: take `keep` of them; if `seek_to` is set,
    fetch again from there (the rest of the records come back then); `skipped`: a hole given up on."""

    keep: int
    seek_to: int | None = None
    skipped: Hole | None = None


@dataclass
class OffsetGaps:
    retry_seconds: float = RETRY_SECONDS
    clock: Callable[[], float] = time.monotonic
    expected: dict[TopicPartition, int] = field(default_factory=dict)   # next offset to hand out
    holes: dict[TopicPartition, Hole] = field(default_factory=dict)     # being refetched

    def check(self, tp: TopicPartition, offsets: Callable[[], Sequence[int]], first: int, last: int,
              count: int) -> Verdict:
        """Judge a run of `count` records, offsets `first`..`last` ascending. `offsets()` lists them
        all; called only when the run is not contiguous (the common case costs two comparisons)."""
        want = self.expected.get(tp, first)
        if first <= want and last - first + 1 == count:         # contiguous from where we are (or a re-read)
            self._took(tp, last)
            return Verdict(count)
        offs = offsets()
        keep, next_off = 0, want
        for off in offs:
            if off > next_off:
                break
            keep += 1
            next_off = max(next_off, off + 1)
        else:                                                     # re-read records only, no hole
            self._took(tp, last)
            return Verdict(count)
        hole = self._hole(tp, next_off, offs[keep])
        if self.clock() - hole.since < self.retry_seconds:
            if keep:
                self._took(tp, next_off - 1)
            return Verdict(keep, seek_to=next_off)
        del self.holes[tp]                                        # given up: take everything, report the hole
        self._took(tp, last)
        return Verdict(count, skipped=hole)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions revoked, lost or re-sought: their next records start a new expectation."""
        for tp in tps:
            self.expected.pop(tp, None)
            self.holes.pop(tp, None)

    def _took(self, tp: TopicPartition, last: int) -> None:
        self.expected[tp] = max(self.expected.get(tp, 0), last + 1)
        hole = self.holes.get(tp)
        if hole is not None and last >= hole.start:
            del self.holes[tp]

    def _hole(self, tp: TopicPartition, start: int, end: int) -> Hole:
        hole = self.holes.get(tp)
        if hole is None or hole.start != start:
            hole = self.holes[tp] = Hole(start, end, self.clock())
        return hole
