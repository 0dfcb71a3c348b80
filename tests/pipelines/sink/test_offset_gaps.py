"""A fetch that skips offsets (a broker serving a partial view of its log) must not lose rows: the sink
takes what comes before the hole, fetches again from it, and gives up on a hole only after
retry_seconds, reporting the offsets it skipped.

The rule itself (OffsetGaps) on plain offsets; then the sink against the real tansu broker and the
embedded ClickHouse with both Kafka clients, its consumer's poll leaving a record out the way the
broker did in bench/e2e.py on 2026-11-26 (flows partition 0, offset 9497)."""

from __future__ import annotations

import pytest
from kafka import TopicPartition

from pipelines.kafka.messages import flow_message
from pipelines.sink.gaps import OffsetGaps
from tests.pipelines.sink.test_jsonflows import event
from tests.pipelines.sink.test_sink_faults import committed

TP = TopicPartition("t", 0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def judge(gaps: OffsetGaps, offsets: list[int]):
    return gaps.check(TP, lambda: offsets, offsets[0], offsets[-1], len(offsets))


def test_contiguous_runs_are_taken_whole_and_set_the_expectation():
    gaps = OffsetGaps()
    assert judge(gaps, [5, 6, 7]).keep == 3           # the first run after an assignment: taken as it starts
    assert gaps.expected[TP] == 8
    v = judge(gaps, [8, 9])
    assert (v.keep, v.seek_to, v.skipped) == (2, None, None)
    assert gaps.expected[TP] == 10


def test_a_hole_inside_a_run_keeps_the_records_before_it_and_seeks_back():
    gaps = OffsetGaps()
    v = judge(gaps, [0, 1, 2, 4, 5])
    assert (v.keep, v.seek_to, v.skipped) == (3, 3, None)
    assert gaps.expected[TP] == 3
    assert (gaps.holes[TP].start, gaps.holes[TP].end) == (3, 4)
    v = judge(gaps, [3, 4, 5, 6])                      # the refetch has it: hole closed
    assert (v.keep, v.seek_to) == (4, None)
    assert TP not in gaps.holes and gaps.expected[TP] == 7


def test_a_hole_between_polls_takes_nothing_until_it_is_filled():
    gaps = OffsetGaps()
    judge(gaps, [0, 1])
    v = judge(gaps, [3, 4])                            # offset 2 missing
    assert (v.keep, v.seek_to) == (0, 2)
    assert gaps.expected[TP] == 2


def test_re_read_records_are_not_a_hole():
    gaps = OffsetGaps()
    judge(gaps, [0, 1, 2, 3])
    assert judge(gaps, [2, 3, 4]).keep == 3            # a rewind (pause/resume) hands out 2 and 3 again
    assert judge(gaps, [1, 3, 5, 6]).keep == 4         # re-read stragglers before the expectation, then 5 on
    assert gaps.expected[TP] == 7


def test_a_hole_that_stays_is_given_up_after_retry_seconds_and_reported():
    clock = Clock()
    gaps = OffsetGaps(retry_seconds=5.0, clock=clock)
    judge(gaps, [0, 1])
    assert judge(gaps, [4, 5]).seek_to == 2
    clock.now += 4.9
    assert judge(gaps, [4, 5]).seek_to == 2            # same hole, still within the retry time
    clock.now += 0.2
    v = judge(gaps, [4, 5])
    assert (v.keep, v.seek_to) == (2, None)
    assert (v.skipped.start, v.skipped.end) == (2, 4)
    assert gaps.expected[TP] == 6 and TP not in gaps.holes


def test_forget_drops_the_expectation():
    gaps = OffsetGaps()
    judge(gaps, [0, 1])
    gaps.forget([TP])
    assert judge(gaps, [10, 11]).keep == 2             # a new assignment may start anywhere


class LeaveOut:
    """The real consumer's poll, minus the record at (`topic`, `offset`) in the first `times` polls
    that hand it out: what a broker returning a partial fetch looks like to the sink."""

    def __init__(self, sink, topic: str, offset: int, times: int) -> None:
        self.source = sink._consumer
        self.codec = sink._codec
        self.topic, self.offset, self.left = topic, offset, times
        self.poll = self.source.poll
        self.source.poll = self

    def __call__(self, max_records: int, timeout_ms: int) -> dict:
        out = self.poll(max_records, timeout_ms)
        for tp, recs in out.items():
            if tp.topic != self.topic or not self.left:
                continue
            kept = [r for r in recs if self.codec.offset(r) != self.offset]
            if len(kept) < len(recs):
                self.left -= 1
                out[tp] = kept
        return {tp: recs for tp, recs in out.items() if recs}


def publish_one_partition(sink_env, n: int) -> None:
    """n flow events under one key: one partition, offsets 0..n-1."""
    msgs = [flow_message(sink_env.topics.flows, event(i)) for i in range(n)]
    sink_env.publisher.send([type(m)(m.topic, b"same-key", m.value, m.headers) for m in msgs])


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_a_record_left_out_of_a_fetch_is_fetched_again_and_written(sink_env, client):
    publish_one_partition(sink_env, 300)
    sink = sink_env.sink(f"hole-{client}", kafka_client=client, assignment="manual")
    sink.start()
    cut = LeaveOut(sink, sink_env.topics.flows, offset=137, times=3)
    stats = sink.run_until_idle(idle_seconds=1.0, timeout=90)
    assert cut.left == 0                                  # the record was left out three times ...
    assert stats.hole_refetches >= 3 and stats.offsets_skipped == 0
    assert stats.messages == 300                          # ... and still handed out once, in the end
    assert sink_env.q("SELECT count(), uniqExact(signature) FROM {db}.usage_fees") == [(300, 300)]
    assert committed(sink_env, f"hole-{client}", sink_env.topics.flows) == 300


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_a_hole_that_never_fills_is_skipped_after_retry_seconds_and_counted(sink_env, client):
    publish_one_partition(sink_env, 120)
    sink = sink_env.sink(f"gone-{client}", kafka_client=client, assignment="manual")
    sink.start()
    sink._gaps.retry_seconds = 1.0
    LeaveOut(sink, sink_env.topics.flows, offset=50, times=10**9)
    stats = sink.run_until_idle(idle_seconds=1.0, timeout=90)
    assert stats.offsets_skipped == 1 and stats.hole_refetches >= 1
    assert stats.messages == 119
    sigs = {s for (s,) in sink_env.q("SELECT signature FROM {db}.usage_fees")}
    assert len(sigs) == 119 and event(50).signature not in sigs
    skipped = [(smp.labels["topic"], smp.value) for metric in sink.metrics.registry.collect()
               if metric.name == "depinflow_sink_offsets_skipped" for smp in metric.samples
               if smp.name.endswith("_total")]
    assert skipped == [(sink_env.topics.flows, 1.0)]
