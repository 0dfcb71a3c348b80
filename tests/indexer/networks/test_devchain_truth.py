"""Every transaction the chain simulator generates classifies to the simulator's ground truth.

The simulator knows what it generated (flow_rules.md); the classifier infers it from the bytes
served over RPC. Each transaction is rendered in one of the three RPC encodings (rotating),
parsed and classified; the events must match one for one (event id, class, subtype, mint,
amount, day, leg), and the per-day totals must equal `devchain truth`.
"""

from __future__ import annotations

import os
from collections import defaultdict

import pytest

from indexer.decode.txparse import parse_transaction
from indexer.devchain.ledger import SimConfig, generate_ledger
from indexer.devchain.render import get_transaction_result
from indexer.networks.classify import classify_transaction

ENCODINGS = ("json", "jsonParsed", "base64")
FIELDS = ("network", "flow_class", "subtype", "mint", "amount_raw", "day", "signature", "ix_path", "leg")


def classify_ledger(ledger):
    """(event_id -> FlowEvent, signatures of forked blocks, dead letters) for a whole ledger."""
    got, dead = {}, []
    for i, rec in enumerate(ledger.transactions()):
        tx = parse_transaction(get_transaction_result(rec, ENCODINGS[i % 3], True))
        out = classify_transaction(tx)
        dead.extend(out.dead_letters)
        for f in out.flows:
            assert f.event_id not in got, f"duplicate event id {f.event_id}"
            got[f.event_id] = f
    forked = {rec.signature for b in ledger.blocks if b.forked for rec in b.transactions}
    return got, forked, dead


def truth_of(flows, forked) -> list[dict]:
    sums: dict[tuple, int] = defaultdict(int)
    for f in flows:
        if f.signature not in forked:
            sums[f.truth_key()] += f.amount_raw
    return [{"network": k[0], "day": k[1], "flow_class": k[2], "subtype": k[3], "mint": k[4], "amount_raw": v}
            for k, v in sorted(sums.items())]


def assert_matches_truth(config: SimConfig) -> dict:
    ledger = generate_ledger(config)
    got, forked, dead = classify_ledger(ledger)
    assert dead == []
    expected = {e["event_id"]: e for e in ledger.expected_events()}
    assert set(got) == set(expected), (sorted(set(expected) - set(got))[:5], sorted(set(got) - set(expected))[:5])
    for event_id, e in expected.items():
        f = got[event_id].to_dict()
        assert tuple(f[k] for k in FIELDS) == tuple(e[k] for k in FIELDS), (e, f)
    assert truth_of(got.values(), forked) == ledger.truth_lines()
    return got


def test_default_day_matches_ground_truth_event_for_event():
    got = assert_matches_truth(SimConfig())
    classes = {(f.network, f.flow_class) for f in got.values()}
    assert {("helium", "usage_fee"), ("helium", "purchase"), ("helium", "distribution"),
            ("render", "usage_fee"), ("render", "transfer"), ("render", "other")} <= classes


@pytest.mark.parametrize(("start_day", "days"), [
    ("2025-01-26", 4),   # crosses HIP-138 (2025-01-28): DNT + treasury emissions, then HNT-only
    ("2024-01-07", 2),   # HIP-96 MOBILE onboarding/boost fees, HST pool era
])
def test_era_crossing_ledgers_match_ground_truth(start_day, days):
    got = assert_matches_truth(SimConfig(seed=3, start_day=start_day, days=days, slots_per_day=500))
    assert any(f.flow_class == "emission" for f in got.values())


LONG = os.environ.get("DEPINFLOW_LONG") == "1"
SOAK_STARTS = ["2023-09-27", "2024-12-05", "2025-07-30", "2026-03-28", "2026-08-05"]


@pytest.mark.parametrize("seed", range(len(SOAK_STARTS)) if LONG else [0])
def test_soak_seeds_and_eras(seed):
    """One small extra era by default; with DEPINFLOW_LONG=1 five seeds x 3 full-size days."""
    days, slots = (3, 2400) if LONG else (1, 300)
    assert_matches_truth(SimConfig(seed=100 + seed, start_day=SOAK_STARTS[seed], days=days, slots_per_day=slots))
