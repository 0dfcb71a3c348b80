"""Bad Kafka messages into the sink's parser: every one becomes a correct row or a typed rejection.

In-process and fast (the end-to-end run through the broker and ClickHouse is test_sink_e2e.py).
For each topic: real listener records mutated (fields retyped, deleted, integers beyond their column,
negative, huge), random bytes, tombstones, arbitrary JSON values, odd headers. The parser must
either produce a row whose every value fits its declared ClickHouse column type (so the insert
cannot refuse it for a type reason) or raise `Rejected` with a short machine reason - the sink then
dead-letters the message with that reason and its raw bytes. The column-wise fast path for flows
must accept and reject exactly the same messages as the per-message parser.
"""

from __future__ import annotations

import random

import orjson
from hypothesis import given
from hypothesis import strategies as st

from pipelines.sink.columns import flow_columns
from pipelines.sink.rows import KIND_FLOW, Rejected, decode_value
from tests.fuzz.corpus import HypChooser, RandomChooser
from tests.fuzz.messages import KINDS, FuzzMessage, base_records, expected_fate, fits, fuzz_message
from tests.fuzz.profiles import budget


def test_unmutated_listener_records_all_become_rows():
    """The control: every base record of every topic parses into a row that fits its table."""
    for kind in KINDS:
        records = base_records()[kind]
        assert records, kind
        for rec in records:
            fate = expected_fate(FuzzMessage(kind, orjson.dumps(rec), [], b"k"))
            assert not isinstance(fate, Rejected), (kind, fate, rec)
            assert fits(*fate)


@budget(1000)
@given(data=st.data())
def test_damaged_messages_become_rows_or_typed_rejections(data):
    """Every choice drawn from hypothesis, so a failure shrinks to the smallest damage."""
    expected_fate(fuzz_message(HypChooser(data)))


@budget(250)
@given(seed=st.integers(0, 2**32 - 1))
def test_bulk_damaged_messages(seed):
    """Volume: 200 messages per example from a seeded generator (~50 us each instead of ~2 ms of
    hypothesis draws): 50,000 cases by default. A failure names the seed, which replays it exactly."""
    ch = RandomChooser(random.Random(seed))
    for _ in range(200):
        expected_fate(fuzz_message(ch))


@budget(600)
@given(data=st.data())
def test_flow_fast_path_agrees_with_the_per_message_parser(data):
    ch = HypChooser(data)
    msgs = [m for m in (fuzz_message(ch) for _ in range(ch.int(1, 12))) if m.kind == KIND_FLOW]
    decoded, fates = [], []
    for m in msgs:
        try:
            decoded.append(decode_value(m.value))        # what the sink batches for flows
            fates.append(expected_fate(m))
        except Rejected:
            continue
    cols, kept, rejected = flow_columns(decoded)
    assert kept == [i for i, f in enumerate(fates) if not isinstance(f, Rejected)]
    assert [(i, r.reason) for i, r in rejected] == [(i, f.reason) for i, f in enumerate(fates)
                                                    if isinstance(f, Rejected)]
    rows = [f[1] for f in fates if not isinstance(f, Rejected)]
    assert cols == ([list(c) for c in zip(*rows, strict=True)] if rows else cols)
