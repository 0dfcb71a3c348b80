"""The column-wise fast path accepts, rejects and produces exactly what the per-message path does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.networks.events import FlowEvent
from pipelines.sink.columns import _fast, _Slow, flow_columns
from pipelines.sink.rows import Rejected, flow_row


def event(i: int, **kw) -> dict:
    base = dict(signature=f"sig{i}", ix_path=f"{i % 4}.1", network="render" if i % 3 else "helium",
                flow_class=["usage_fee", "emission", "transfer"][i % 3], subtype="x", slot=1000 + i,
                block_time=1774656000 + i, day=["2026-03-28", "2026-03-29"][i % 2], program_id="p",
                program="q", instruction="r", mint="M", symbol="S", amount_raw=i * 7, decimals=i % 9,
                leg=None if i % 2 else i % 3, epoch=None if i % 2 else 20540, commitment=["confirmed", "finalized"][i % 2],
                usd=None if i % 4 else "1.25")
    base.update(kw)
    return FlowEvent(**base).to_dict()


def per_message(ds: list[dict]):
    rows, kept, rejected = [], [], []
    for i, d in enumerate(ds):
        try:
            rows.append(flow_row(d)[1])
            kept.append(i)
        except Rejected as rej:
            rejected.append((i, rej.reason))
    return [list(c) for c in zip(*rows, strict=True)], kept, rejected


def test_fast_path_equals_per_message_on_valid_events():
    ds = [event(i) for i in range(200)]
    cols = _fast(ds)                       # raises _Slow if it had to fall back
    assert cols == per_message(ds)[0]


BAD_VALUES = st.sampled_from([
    ("amount_raw", -5), ("amount_raw", "7"), ("amount_raw", True), ("slot", None), ("leg", 70000),
    ("day", "2026-02-30"), ("day", 20540), ("usd", "abc"), ("usd", 3), ("flow_class", "gift"), ("network", ""),
    ("commitment", "processed"), ("event_id", "x:y"), ("schema_version", "v0"), ("program", 5), ("sub_dao", None),
    ("reason", 0), ("epoch", -1), ("decimals", 256), ("mint", None),
])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 29), BAD_VALUES), max_size=5))
def test_both_paths_agree_with_invalid_values(mutations):
    ds = [event(i) for i in range(30)]
    for i, (key, value) in mutations:
        ds[i][key] = value
    cols, kept, rejected = flow_columns(ds)
    exp_cols, exp_kept, exp_rejected = per_message(ds)
    assert kept == exp_kept
    assert [(i, r.reason) for i, r in rejected] == exp_rejected
    if exp_kept:
        assert cols == exp_cols


def test_fast_path_declines_what_it_does_not_check_itself():
    ds = [event(0, usd=None)]
    ds[0]["usd"] = 5                        # an int USD is accepted, but only by the exact path
    try:
        _fast(ds)
        raise AssertionError("expected the fast path to decline")
    except _Slow:
        pass
    cols, kept, rejected = flow_columns(ds)
    assert kept == [0] and rejected == [] and cols[21] == ["5"]
