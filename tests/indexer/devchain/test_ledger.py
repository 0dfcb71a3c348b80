"""The generated ledger: determinism, real encodings, decodability, and ground truth consistency."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest
from solders.message import to_bytes_versioned
from solders.transaction import VersionedTransaction

from indexer.decode.registry import default_registry
from indexer.decode.txparse import parse_transaction
from indexer.devchain import accounts as A
from indexer.devchain.ledger import SimConfig, generate_ledger
from indexer.devchain.render import get_transaction_result
from indexer.networks.events import FlowClass, Subtype, epoch_day, utc_day


def _digest(ledger) -> str:
    h = hashlib.sha256()
    for b in ledger.blocks:
        h.update(f"{b.slot}:{b.parent_slot}:{b.blockhash}:{b.block_time}:{b.forked}".encode())
        for tx in b.transactions:
            h.update(tx.wire)
            h.update(json.dumps(get_transaction_result(tx, "json", True), sort_keys=True).encode())
    h.update(json.dumps(ledger.expected_events(), sort_keys=True).encode())
    return h.hexdigest()


def test_same_config_same_bytes():
    cfg = dict(seed=5, slots_per_day=200, tx_per_slot=1.2)
    a, b = generate_ledger(SimConfig(**cfg)), generate_ledger(SimConfig(**cfg))
    assert a.tx_count() > 150
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(generate_ledger(SimConfig(**{**cfg, "seed": 6})))


def test_default_day_is_a_few_thousand_transactions():
    import time

    t = time.perf_counter()
    ledger = generate_ledger(SimConfig())
    elapsed = time.perf_counter() - t
    assert 2000 <= ledger.tx_count() <= 6000
    assert elapsed < 45, elapsed                    # ~3 s on an idle core


def test_wire_bytes_are_real_signed_transactions(small_ledger):
    versions = Counter()
    for tx in small_ledger.transactions():
        vtx = VersionedTransaction.from_bytes(tx.wire)
        assert str(vtx.signatures[0]) == tx.signature
        assert all(vtx.verify_with_results()), tx.signature
        assert bytes(vtx) == tx.wire
        versions[tx.version] += 1
        if tx.version == 0 and tx.lookups:
            assert tx.lookups[0][0] == A.HELIUM_LUT
            assert tx.loaded_writable or tx.loaded_readonly
        msg = to_bytes_versioned(vtx.message)
        assert len(msg) + 1 + 64 * len(vtx.signatures) == len(tx.wire)
        assert len(tx.wire) <= 1232                      # fits a Solana packet
    assert versions["legacy"] > 50 and versions[0] > 50
    assert sum(1 for t in small_ledger.transactions() if t.lookups) > 50


def test_every_transaction_parses_and_every_watched_instruction_decodes(small_ledger):
    reg = default_registry()
    seen_programs = Counter()
    for block in small_ledger.blocks:
        for rec in block.transactions:
            for enc in ("base64", "json", "jsonParsed"):
                tx = parse_transaction(json.loads(json.dumps(get_transaction_result(rec, enc, True))))
                assert tx.signature == rec.signature and tx.slot == block.slot
                assert tx.block_time == block.block_time
                for ix in tx.walk():
                    if ix.data is None:           # jsonParsed spl-token/system/memo
                        continue
                    if reg.knows(ix.program_id):
                        d = reg.decode(ix.program_id, ix.data, ix.accounts, tx.slot)
                        seen_programs[d.program] += 1
                        # only remaining accounts (tuktuk tasks, mini_fanout shareholders) and multisig co-signers may trail
                        multisig = d.program == "spl-token" and A.RENDER_BURN_WALLET in ix.accounts
                        remaining_ok = ix.program_id in (A.TUKTUK, A.MINI_FANOUT)
                        assert not d.extra_accounts or remaining_ok or multisig, (d.program, d.name)
    for name in ("data_credits", "helium_sub_daos", "lazy_distributor", "circuit_breaker", "tuktuk",
                 "helium_entity_manager", "treasury_management", "no_emit", "rewards_oracle", "spl-token",
                 "hexboosting", "dc_auto_top", "fanout"):
        assert seen_programs[name] > 0, name


def test_inner_instructions_have_stack_heights_and_token_balances_follow(small_ledger):
    for rec in small_ledger.transactions():
        for _, cpis in rec.inner:
            assert all(c.stack_height >= 2 for c in cpis)
        if rec.err is not None:
            pre = {(b.account_index, b.mint): b.amount for b in rec.pre_token}
            post = {(b.account_index, b.mint): b.amount for b in rec.post_token}
            assert pre == post and rec.inner == []
            assert rec.post_balances[0] == rec.pre_balances[0] - rec.fee


def test_failed_skipped_and_forked_are_present(small_ledger):
    blocks = small_ledger.blocks
    assert any(tx.err is not None for tx in small_ledger.transactions())
    assert sum(b.forked for b in blocks) >= 3
    canonical = [b for b in blocks if not b.forked]
    for prev, b in zip(canonical, canonical[1:], strict=False):
        assert b.parent_slot == prev.slot and b.previous_blockhash == prev.blockhash
        assert b.block_height == prev.block_height + 1
    forked_sigs = {tx.signature for b in blocks if b.forked for tx in b.transactions}
    events = small_ledger.expected_events()
    assert {e["signature"] for e in events if e["forked"]} <= forked_sigs
    assert any(e["forked"] for e in events)
    failed = {tx.signature for tx in small_ledger.transactions() if tx.err is not None}
    assert not failed & {e["signature"] for e in events}


def test_truth_lines_sum_the_finalized_events(small_ledger):
    lines = small_ledger.truth_lines()
    keys = [(r["network"], r["day"], r["flow_class"], r["subtype"], r["mint"]) for r in lines]
    assert keys == sorted(keys) and len(keys) == len(set(keys))
    assert list(lines[0]) == ["network", "day", "flow_class", "subtype", "mint", "amount_raw"]
    total = Counter()
    for e in small_ledger.expected_events():
        if not e["forked"]:
            total[(e["network"], e["day"], e["flow_class"], e["subtype"], e["mint"])] += e["amount_raw"]
    assert {k: v for k, v in total.items()} == {k: r["amount_raw"] for k, r in zip(keys, lines, strict=True)}
    classes = {(r["flow_class"], r["subtype"]) for r in lines}
    for fc, st in [("usage_fee", "data_transfer"), ("usage_fee", "onboarding"), ("usage_fee", "location_assert"),
                   ("usage_fee", "other_burn"), ("purchase", "hnt_burned"), ("purchase", "dc_minted"),
                   ("emission", "rewards_escrow"), ("emission", "delegator_pool"), ("reversal", "no_emit"),
                   ("distribution", "lazy_distributor"), ("transfer", "treasury_redeem"),
                   ("transfer", "dc_delegation"), ("usage_fee", "bme_burn"), ("emission", "mint"),
                   ("transfer", "burn_wallet_deposit"), ("transfer", "token_transfer")]:
        assert (fc, st) in classes, (fc, st)
    for r in lines:
        assert FlowClass(r["flow_class"]) and Subtype(r["subtype"])


def test_event_shape_and_days(small_ledger):
    for e in small_ledger.expected_events():
        assert e["event_id"].startswith(e["signature"] + ":" + e["ix_path"])
        assert isinstance(e["amount_raw"], int) and e["amount_raw"] >= 0
        block = small_ledger.by_slot[e["slot"]]
        if e["flow_class"] == "emission" and e["network"] == "helium":
            assert e["day"] == epoch_day(e["epoch"])
            assert utc_day(block.block_time) > e["day"]       # cranked on day e+1
            assert block.block_time % 86400 < 1200            # within the first 20 minutes
        else:
            assert e["day"] == utc_day(block.block_time)


def _emission_subtypes(ledger, day):
    return Counter((e["subtype"], e["mint"]) for e in ledger.expected_events()
                   if e["flow_class"] == "emission" and e["network"] == "helium" and e["day"] == day)


def test_era_crossing_hip138_changes_layout_and_mints():
    ledger = generate_ledger(SimConfig(seed=2, start_day="2025-01-27", days=2, slots_per_day=150,
                                       networks=("helium",), fork_rate=0, failed_rate=0))
    pre = _emission_subtypes(ledger, "2025-01-26")   # cranked 2025-01-27 (pre-HIP-138 program)
    post = _emission_subtypes(ledger, "2025-01-27")  # cranked 2025-01-28 (HSD 0.2.0)
    assert pre[("rewards_escrow", A.IOT)] == 1 and pre[("rewards_escrow", A.MOBILE)] == 1
    assert pre[("treasury", A.HNT)] == 2 and pre[("hst_pool", A.HNT)] == 1
    assert pre[("mobile_treasury_topup", A.HNT)] == 1
    assert post[("rewards_escrow", A.HNT)] == 2 and post[("delegator_pool", A.HNT)] == 2
    assert ("treasury", A.HNT) not in post and ("hst_pool", A.HNT) not in post
    reg = default_registry()
    names = set()
    for rec in ledger.transactions():
        tx = parse_transaction(get_transaction_result(rec, "base64", True))
        for ix in tx.walk():
            if ix.program_id == A.HELIUM_SUB_DAOS:
                d = reg.decode(ix.program_id, ix.data, ix.accounts, tx.slot)
                if d.name == "issue_rewards_v0":
                    names.add(("dnt_circuit_breaker" in d.accounts, d.accounts["rewards_escrow"]))
    assert (True, A.IOT_REWARDS_ESCROW) in names and (False, A.DAO_REWARDS_ESCROW) in names


@pytest.mark.parametrize("start_day,subtype", [("2026-08-06", "supplement"), ("2025-08-01", "mobile_treasury_topup")])
def test_era_dependent_emission_lines(start_day, subtype):
    ledger = generate_ledger(SimConfig(seed=4, start_day=start_day, days=2, slots_per_day=120,
                                       networks=("helium",)))
    days = {e["day"] for e in ledger.expected_events() if e["subtype"] == subtype}
    if subtype == "supplement":
        assert days == {"2026-08-06"}             # epoch 08-05 (cranked 08-06) has none, 08-06 has
        assert _emission_subtypes(ledger, "2026-08-06")[("council", A.HNT)] == 2
    else:
        assert days == {"2025-07-31"}             # top-up ends with epoch 2025-07-31


def test_classifier_agrees_with_ground_truth(small_ledger):
    """The contract test: the project's classifier, fed the served bytes, emits exactly the events
    the simulator knows it generated (same ids, classes, mints and amounts)."""
    from indexer.networks.classify import classify_transaction

    got = {}
    for block in small_ledger.blocks:
        for rec in block.transactions:
            tx = parse_transaction(get_transaction_result(rec, "base64", True))
            for ev in classify_transaction(tx).flows:
                got[ev.event_id] = (ev.network, ev.day, ev.flow_class, ev.subtype, ev.mint, ev.amount_raw)
    want = {e["event_id"]: (e["network"], e["day"], e["flow_class"], e["subtype"], e["mint"], e["amount_raw"])
            for e in small_ledger.expected_events()}
    assert got == want
