"""Helium flow rules on real fixtures and on encoder-built transactions (flow_rules.md contract)."""

from __future__ import annotations

import orjson
import pytest

from indexer.decode.eras import boundary_slot, slot_for_time
from indexer.decode.txparse import parse_transaction
from indexer.networks.classify import classify_transaction
from indexer.networks.events import epoch_day
from tests.indexer.networks.builders import (
    BLOCK_TIME,
    DC,
    HNT,
    IOT,
    IOT_SUB_DAO,
    MOBILE,
    MOBILE_SUB_DAO,
    P,
    TxSpec,
    addr,
    anchor,
    cb_burn,
    cb_mint,
    cb_transfer,
    price_log,
    spl,
    tuktuk,
)
from tests.refdata import reference_path


def flows_of(tx):
    out = classify_transaction(tx)
    assert not out.dead_letters, out.dead_letters
    return out.flows


def summary(flows):
    return [(f.ix_path, f.leg, f.flow_class, f.subtype, f.symbol, f.amount_raw) for f in flows]


def fixture(name: str):
    return parse_transaction(orjson.loads(reference_path(f"helium/fixtures/{name}").read_bytes()))


# --- real data ------------------------------------------------------------------------------------
def test_mainnet_claim_rewards_is_two_non_voter_burns_and_nothing_else():
    out = classify_transaction(fixture("hsd_claim_rewards.json"))
    assert summary(out.flows) == [
        ("2.1", None, "reversal", "non_voter_burn", "HNT", 787),
        ("3.1", None, "reversal", "non_voter_burn", "HNT", 79_944),
    ]
    for f in out.flows:
        assert f.epoch == 20542
        assert f.program == "helium_sub_daos" and f.instruction == "claim_rewards_v1"
        assert f.outer_program == "tuktuk" and f.outer_instruction == "run_task_v0"
        assert f.parent_instruction == "tuktuk.run_task_v0"
        assert f.payer_account == "A7AjQhocZZvQXQJ5ducRF7gkconjNZfMNCjKguShoe8G"
        assert f.day == "2026-03-31"  # block day: claims are not dated to the epoch
        assert f.usd is None
    assert [f.sub_dao for f in out.flows] == ["mobile", "iot"]
    assert not {f.flow_class for f in out.flows} & {"usage_fee", "emission"}
    # every Helium instruction is recorded, circuit_breaker.burn_v0 (no public IDL) included
    assert [(r["ix_path"], r["program"], r["instruction"]) for r in out.instructions] == [
        ("2.1", "helium_sub_daos", "claim_rewards_v1"), ("2.1.1", "circuit_breaker", "burn_v0"),
        ("3.1", "helium_sub_daos", "claim_rewards_v1"), ("3.1.1", "circuit_breaker", "burn_v0")]
    assert out.instructions[1]["args"] == {"args": {"amount": 787}}
    assert out.dead_letters == []


def test_devnet_lazy_distributor_payout_is_one_zero_distribution():
    out = classify_transaction(fixture("lazy_distributor_distribute.json"))
    assert summary(out.flows) == [("3.2", None, "distribution", "lazy_distributor", "HNT", 0)]
    (f,) = out.flows
    assert f.instruction == "distribute_custom_destination_v0"
    assert f.payer_account == "BDs6RPnpJNzmuMNv1z8cDh9cxKFgCxEVDaCfoHZWyvqJ"
    assert f.amount == "0.00000000"
    # set_current_rewards_* are accounting only: recorded, never flows
    assert {r["instruction"] for r in out.instructions} >= {"set_current_rewards_wrapper_v2", "set_current_rewards_v1"}


# --- data credits ---------------------------------------------------------------------------------
def _purchase(hnt_amount: int, dc_amount: int, owner: str, *, price=(41234567, -8)):
    burner, recipient_ata = addr(f"{owner}.hnt"), addr(f"{owner}.dc")
    return anchor("data_credits", "mint_data_credits_v0",
                  {"args": {"hnt_amount": hnt_amount, "dc_amount": None}},
                  burner=burner, recipient_token_account=recipient_ata, recipient=owner, owner=owner,
                  hnt_mint=HNT, dc_mint=DC,
                  logs=["Program log: Instruction: MintDataCreditsV0", price_log(*price, dc_amount)],
                  children=[spl("burn", amount=hnt_amount, account=burner, mint=HNT, authority=owner),
                            cb_mint(DC, recipient_ata, dc_amount)]), burner, recipient_ata


def test_top_level_purchase_has_two_legs_priced_from_its_log():
    owner = addr("buyer")
    node, burner, ata = _purchase(250_000_000, 103_086, owner)  # 2.5 HNT at 0.41234567
    tx = TxSpec("purchase").add(node).token(burner, HNT, owner).token(ata, DC, owner, 0).build()
    flows = flows_of(tx)
    assert summary(flows) == [("0", 0, "purchase", "hnt_burned", "HNT", 250_000_000),
                              ("0", 1, "purchase", "dc_minted", "DC", 103_086)]
    hnt_leg, dc_leg = flows
    assert hnt_leg.event_id == f"{tx.signature}:0:0"
    assert hnt_leg.usd_price == "0.41234567" and hnt_leg.usd == "1.030864175"
    assert dc_leg.usd_price == "0.00001" and dc_leg.usd == "1.03086"
    assert hnt_leg.payer_account == burner and hnt_leg.payer_owner == owner
    assert dc_leg.recipient_account == ata and dc_leg.recipient_owner == owner


def test_purchase_nested_in_a_tuktuk_top_off_keys_on_the_purchase_and_the_delegation():
    owner = addr("auto_top")
    purchase, burner, ata = _purchase(1_000_000, 4_123, owner)
    escrow = addr("escrow")
    delegate = anchor("data_credits", "delegate_data_credits_v0",
                      {"args": {"amount": 4_123, "router_key": "oui-7"}},
                      owner=owner, from_account=ata, escrow_account=escrow, sub_dao=IOT_SUB_DAO,
                      children=[spl("transfer", amount=4_123, source=ata, destination=escrow, authority=owner)])
    top_off = anchor("dc_auto_top", "top_off_dc_v0", children=[purchase, delegate])
    tx = (TxSpec("top_off").add(tuktuk(top_off)).token(burner, HNT, owner).token(ata, DC, owner, 0)
          .token(escrow, DC, addr("delegated")).build())
    flows = flows_of(tx)
    assert summary(flows) == [("0.1.1", 0, "purchase", "hnt_burned", "HNT", 1_000_000),
                              ("0.1.1", 1, "purchase", "dc_minted", "DC", 4_123),
                              ("0.1.2", None, "transfer", "dc_delegation", "DC", 4_123)]
    assert {f.parent_instruction for f in flows} == {"dc_auto_top.top_off_dc_v0"}
    assert {f.outer_program for f in flows} == {"tuktuk"}
    assert flows[2].sub_dao == "iot" and flows[2].recipient_account == escrow


def _burn_delegated(amount: int, sub_dao: str = MOBILE_SUB_DAO):
    escrow = addr("carrier.escrow")
    return anchor("data_credits", "burn_delegated_data_credits_v0", {"args": {"amount": amount}},
                  sub_dao=sub_dao, escrow_account=escrow, dc_mint=DC,
                  children=[anchor("helium_sub_daos", "track_dc_burn_v0",
                                   {"args": {"dc_burned": amount, "bump": 255}}),
                            spl("burn", amount=amount, account=escrow, mint=DC, authority=addr("dc"))]), escrow


def test_delegated_burn_is_data_transfer_usage_of_its_sub_dao_at_the_dc_peg():
    node, escrow = _burn_delegated(12_345_678)
    tx = TxSpec("burn_delegated").add(node).token(escrow, DC, addr("delegated_dc")).build()
    (f,) = flows_of(tx)
    assert (f.flow_class, f.subtype, f.symbol, f.amount_raw, f.sub_dao) == (
        "usage_fee", "data_transfer", "DC", 12_345_678, "mobile")
    assert f.usd == "123.45678" and f.usd_price == "0.00001"
    assert f.payer_account == escrow and f.payer_owner == addr("delegated_dc")
    assert f.day == "2026-03-31" and f.epoch is None


def test_failed_burn_yields_no_flows_but_flagged_instruction_records():
    node, escrow = _burn_delegated(5_000)
    tx = TxSpec("failed", err={"InstructionError": [0, {"Custom": 1}]}).add(node).token(
        escrow, DC, addr("o")).build()
    out = classify_transaction(tx)
    assert out.flows == []
    assert out.instructions and all(r["tx_error"] == '{"InstructionError":[0,{"Custom":1}]}'
                                    for r in out.instructions)


def _dc_burn(amount: int, payer: str):
    burner = addr(f"{payer}.dc")
    return anchor("data_credits", "burn_without_tracking_v0", {"args": {"amount": amount}},
                  burner=burner, owner=payer, dc_mint=DC,
                  children=[spl("burn", amount=amount, account=burner, mint=DC, authority=payer)])


@pytest.mark.parametrize(("program", "parent", "subtype"), [
    ("helium_entity_manager", "onboard_iot_hotspot_v0", "onboarding"),
    ("helium_entity_manager", "onboard_data_only_mobile_hotspot_v0", "onboarding"),
    ("helium_entity_manager", "temp_pay_mobile_onboarding_fee_v0", "onboarding"),
    ("helium_entity_manager", "update_iot_info_v0", "location_assert"),
    ("helium_entity_manager", "update_mobile_info_v0", "location_assert"),
    ("hexboosting", "boost_v0", "hex_boost"),
    ("iot_routing_manager", "initialize_organization_v0", "oui_fee"),
    ("iot_routing_manager", "initialize_devaddr_constraint_v0", "oui_fee"),
])
def test_burn_without_tracking_is_subtyped_by_its_fee_parent(program, parent, subtype):
    maker = addr("maker")
    node = anchor(program, parent, sub_dao=IOT_SUB_DAO, children=[_dc_burn(4_000_000, maker)])
    (f,) = flows_of(TxSpec(parent).add(tuktuk(node)).build())
    assert (f.ix_path, f.flow_class, f.subtype, f.amount_raw, f.symbol) == (
        "0.1.1", "usage_fee", subtype, 4_000_000, "DC")
    assert f.parent_instruction == f"{program}.{parent}" and f.reason == ""
    assert f.payer_owner == maker and f.usd == "40"


def test_top_level_and_tuktuk_wrapped_dc_burns_are_other_burns():
    tx = TxSpec("dc_burns").add(_dc_burn(100, addr("a")), tuktuk(_dc_burn(200, addr("b")))).build()
    assert summary(flows_of(tx)) == [("0", None, "usage_fee", "other_burn", "DC", 100),
                                     ("1.1", None, "usage_fee", "other_burn", "DC", 200)]


def test_dc_burn_under_a_helium_parent_without_fee_rule_says_so():
    node = anchor("welcome_pack", "claim_welcome_pack_v0", children=[_dc_burn(300, addr("c"))])
    (f,) = flows_of(TxSpec("wp").add(node).build())
    assert (f.subtype, f.reason) == ("other_burn", "parent welcome_pack.claim_welcome_pack_v0 has no fee rule")


@pytest.mark.parametrize(("program", "parent", "subtype", "slot"), [
    ("helium_entity_manager", "onboard_mobile_hotspot_v0", "onboarding", slot_for_time(1_720_000_000)),
    ("hexboosting", "boost_v0", "hex_boost", slot_for_time(1_720_000_000)),
])
def test_historical_mobile_burn_under_onboarding_or_boost_is_usage_in_mobile(program, parent, subtype, slot):
    payer, mobile_acct = addr("payer"), addr("payer.mobile")
    burn = spl("burn", amount=7_500_000_000, account=mobile_acct, mint=MOBILE, authority=payer)
    node = anchor(program, parent, slot=slot, children=[burn])
    tx = TxSpec(f"mobile_{parent}", slot=slot, block_time=1_720_000_000).add(node).token(
        mobile_acct, MOBILE, payer).build()
    (f,) = flows_of(tx)
    assert (f.ix_path, f.flow_class, f.subtype, f.symbol, f.amount_raw, f.amount) == (
        "0.1", "usage_fee", subtype, "MOBILE", 7_500_000_000, "7500.000000")
    assert f.program == "spl-token" and f.instruction == "burn"
    assert f.parent_instruction == f"{program}.{parent}" and f.usd is None


def test_dc_delegation_moves_are_transfers():
    owner = addr("router")
    moves = [
        anchor("data_credits", "delegate_data_credits_v0", {"args": {"amount": 9, "router_key": "k"}},
               owner=owner, sub_dao=MOBILE_SUB_DAO),
        anchor("data_credits", "change_delegated_sub_dao_v0", {"args": {"amount": 7, "router_key": "k"}}),
    ]
    assert summary(flows_of(TxSpec("delegations").add(*moves).build())) == [
        ("0", None, "transfer", "dc_delegation", "DC", 9), ("1", None, "transfer", "dc_delegation", "DC", 7)]


# --- emissions ------------------------------------------------------------------------------------
EPOCH_B = 20_100            # 2025-01-12: HSD 0.1.12 layout, MOBILE pass also tops up the treasury
EPOCH_C = 20_300            # 2025-07-31: HIP-138 layout
EPOCH_E = 20_700            # 2026-09-04: HIP-149 layout (supplement + council)


def _issue(epoch: int, *, sub_dao: str, dnt: str, mints: list, **accounts):
    block_time = (epoch + 1) * 86_400 + 600   # cranked 00:10 UTC on the next day
    slot = slot_for_time(block_time)
    node = anchor("helium_sub_daos", "issue_rewards_v0", {"args": {"epoch": epoch}}, slot=slot,
                  sub_dao=sub_dao, hnt_mint=HNT, dnt_mint=dnt,
                  children=[cb_mint(m, to, amt) for m, to, amt in mints], **accounts)
    return TxSpec(f"issue.{epoch}.{sub_dao}", slot=slot, block_time=block_time).add(tuktuk(node))


def test_pre_hip138_mobile_pass_mints_dnt_and_hnt_with_the_treasury_top_up():
    treasury, escrow, pool = addr("mobile.treasury"), addr("mobile.escrow"), addr("mobile.pool")
    spec = _issue(EPOCH_B, sub_dao=MOBILE_SUB_DAO, dnt=MOBILE,
                  treasury=treasury, rewards_escrow=escrow, delegator_pool=pool,
                  mints=[(MOBILE, escrow, 300_000_000_000_000), (MOBILE, pool, 18_000_000_000_000),
                         (HNT, treasury, 1_234_567_890_123), (HNT, treasury, 1_223_628_691_983)])
    tx = spec.build()
    assert tx.slot < boundary_slot("hip138")
    flows = flows_of(tx)
    assert summary(flows) == [
        ("0.1", 0, "emission", "rewards_escrow", "MOBILE", 300_000_000_000_000),
        ("0.1", 1, "emission", "delegator_pool", "MOBILE", 18_000_000_000_000),
        ("0.1", 2, "emission", "treasury", "HNT", 1_234_567_890_123),
        ("0.1", 3, "emission", "mobile_treasury_topup", "HNT", 1_223_628_691_983),
    ]
    assert {(f.day, f.epoch, f.sub_dao) for f in flows} == {(epoch_day(EPOCH_B), EPOCH_B, "mobile")}
    assert flows[0].day != flows[0].block_time // 86_400  # epoch day, not block day
    assert [f.event_id.rsplit(":", 1)[1] for f in flows] == ["0", "1", "2", "3"]


def test_post_hip138_pass_mints_hnt_to_dao_escrow_and_pool():
    escrow, pool, treasury = (addr("dao.escrow"), "A7AjQhocZZvQXQJ5ducRF7gkconjNZfMNCjKguShoe8G",
                              addr("mobile.treasury"))
    spec = _issue(EPOCH_C, sub_dao=MOBILE_SUB_DAO, dnt=MOBILE, treasury=treasury,
                  rewards_escrow=escrow, delegator_pool=pool,
                  mints=[(HNT, pool, 70_000_000_000), (HNT, escrow, 1_100_000_000_000),
                         (HNT, treasury, 1_223_628_691_983)])
    tx = spec.build()
    assert boundary_slot("hip138") <= tx.slot < boundary_slot("hip149")
    assert summary(flows_of(tx)) == [
        ("0.1", 0, "emission", "delegator_pool", "HNT", 70_000_000_000),
        ("0.1", 1, "emission", "rewards_escrow", "HNT", 1_100_000_000_000),
        ("0.1", 2, "emission", "mobile_treasury_topup", "HNT", 1_223_628_691_983),
    ]


def test_hip149_pass_labels_supplement_and_council():
    escrow, pool = addr("dao.escrow"), addr("dao.pool")
    supplement, council = addr("supplement.vault"), addr("council.ata")
    spec = _issue(EPOCH_E, sub_dao=IOT_SUB_DAO, dnt=IOT, rewards_escrow=escrow, delegator_pool=pool,
                  supplement_vault=supplement, council_vault=council,
                  mints=[(HNT, pool, 61_000_000_000), (HNT, escrow, 955_000_000_000),
                         (HNT, supplement, 9_677_500_000_000), (HNT, council, 122_500_000_000)])
    assert summary(flows_of(spec.build())) == [
        ("0.1", 0, "emission", "delegator_pool", "HNT", 61_000_000_000),
        ("0.1", 1, "emission", "rewards_escrow", "HNT", 955_000_000_000),
        ("0.1", 2, "emission", "supplement", "HNT", 9_677_500_000_000),
        ("0.1", 3, "emission", "council", "HNT", 122_500_000_000),
    ]


def test_single_mint_emission_has_no_leg_and_unlabelled_destinations_are_flagged():
    escrow = addr("dao.escrow")
    one = _issue(EPOCH_C, sub_dao=IOT_SUB_DAO, dnt=IOT, rewards_escrow=escrow,
                 mints=[(HNT, escrow, 5)]).build()
    (f,) = flows_of(one)
    assert (f.leg, f.event_id, f.subtype) == (None, f"{one.signature}:0.1", "rewards_escrow")
    odd = _issue(EPOCH_C, sub_dao=IOT_SUB_DAO, dnt=IOT, mints=[(HNT, addr("somewhere"), 5)]).build()
    (g,) = flows_of(odd)
    assert (g.flow_class, g.subtype, g.epoch) == ("other", "unmatched", EPOCH_C)
    assert "unlabelled" in g.reason


def test_hst_pool_emission_is_dated_to_its_epoch():
    hst = addr("hst.pool")
    block_time = 1_704_153_600 + 900  # 2024-01-02 00:15
    slot = slot_for_time(block_time)
    node = anchor("helium_sub_daos", "issue_hst_pool_v0", {"args": {"epoch": 19_723}}, slot=slot,
                  hst_pool=hst, children=[cb_mint(HNT, hst, 1_270_000_000_000)])
    (f,) = flows_of(TxSpec("hst", slot=slot, block_time=block_time).add(node).build())
    assert (f.flow_class, f.subtype, f.amount_raw, f.day, f.epoch) == (
        "emission", "hst_pool", 1_270_000_000_000, "2024-01-01", 19_723)


def test_switch_mobile_ops_fund_mints_hnt_and_burns_the_mobile_fund():
    ops_mobile, ops_hnt = addr("ops.mobile"), addr("ops.hnt")
    node = anchor("helium_sub_daos", "switch_mobile_ops_fund", ops_fund_mobile=ops_mobile,
                  ops_fund_hnt=ops_hnt, hnt_mint=HNT, mobile_mint=MOBILE,
                  children=[spl("burn", amount=18_200_000_000_000_000, account=ops_mobile, mint=MOBILE,
                                authority=addr("dao")),
                            cb_mint(HNT, ops_hnt, 130_000_000_000_000)])
    flows = flows_of(TxSpec("ops").add(node).token(ops_mobile, MOBILE, addr("dao")).build())
    assert summary(flows) == [("0", 0, "other", "unmatched", "MOBILE", 18_200_000_000_000_000),
                              ("0", 1, "emission", "ops_fund", "HNT", 130_000_000_000_000)]
    assert flows[0].reason == "ops_fund_burn"


# --- reversals, distributions, conversions ------------------------------------------------------
def test_no_emit_burn_is_a_reversal():
    acct = addr("not_emitted.ata")
    node = anchor("no_emit", "no_emit_v0", token_account=acct, mint=IOT,
                  children=[spl("burn", amount=42_000_000, account=acct, mint=IOT, authority=addr("ne"))])
    (f,) = flows_of(TxSpec("no_emit").add(tuktuk(node)).token(acct, IOT, addr("ne")).build())
    assert (f.flow_class, f.subtype, f.symbol, f.amount_raw) == ("reversal", "no_emit", "IOT", 42_000_000)


def test_claim_v0_paying_dnt_is_a_delegation_claim_distribution():
    pool, ata, owner = addr("iot.pool"), addr("delegator.iot"), addr("delegator")
    node = anchor("helium_sub_daos", "claim_rewards_v0", {"args": {"epoch": 19_999}}, slot=250_000_000,
                  position_authority=owner, sub_dao=IOT_SUB_DAO, dnt_mint=IOT, delegator_pool=pool,
                  delegator_ata=ata, children=[cb_transfer(pool, ata, 5_550_000)])
    tx = TxSpec("claim_v0", slot=250_000_000).add(node).token(pool, IOT, addr("b")).token(ata, IOT, owner).build()
    (f,) = flows_of(tx)
    assert (f.flow_class, f.subtype, f.symbol, f.amount_raw, f.epoch, f.sub_dao) == (
        "distribution", "delegation_claim", "IOT", 5_550_000, 19_999, "iot")
    assert (f.recipient_account, f.recipient_owner) == (ata, owner)


def test_claim_v1_burn_read_from_the_breaker_is_a_reversal():
    pool = addr("dao.pool")
    node = anchor("helium_sub_daos", "claim_rewards_v1", {"args": {"epoch": 20_500}}, hnt_mint=HNT,
                  delegator_pool=pool, children=[cb_burn(pool, HNT, 31)])
    (f,) = flows_of(TxSpec("claim_v1").add(node).token(pool, HNT, addr("b")).build())
    assert (f.flow_class, f.subtype, f.amount_raw, f.epoch) == ("reversal", "non_voter_burn", 31, 20_500)


@pytest.mark.parametrize("name", ["distribute_rewards_v0", "distribute_compression_rewards_v0",
                                  "distribute_custom_destination_v0"])
def test_lazy_distributor_payouts(name):
    escrow, dest, owner = addr("ld.escrow"), addr("hotspot.ata"), addr("hotspot.owner")
    node = anchor("lazy_distributor", name, rewards_mint=HNT, rewards_escrow=escrow, destination_account=dest,
                  owner=owner, children=[cb_transfer(escrow, dest, 123_456)])
    (f,) = flows_of(TxSpec(name).add(tuktuk(node)).token(escrow, HNT, addr("ld")).token(dest, HNT, owner).build())
    assert (f.flow_class, f.subtype, f.amount_raw, f.recipient_owner) == (
        "distribution", "lazy_distributor", 123_456, owner)


@pytest.mark.parametrize("program", ["fanout", "mini_fanout"])
def test_fanout_distributions_sum_transfers_per_mint(program):
    src = addr(f"{program}.vault")
    transfers = [spl("transfer", amount=a, source=src, destination=addr(f"r{i}"), authority=addr("f"))
                 for i, a in enumerate((10, 20, 30))]
    node = anchor(program, "distribute_v0", children=transfers)
    (f,) = flows_of(TxSpec(program).add(node).token(src, HNT, addr("f")).build())
    assert (f.flow_class, f.subtype, f.symbol, f.amount_raw, f.leg) == ("distribution", "fanout", "HNT", 60, None)


def test_treasury_redeem_is_a_two_leg_conversion():
    src, dst, treasury, owner = addr("u.iot"), addr("u.hnt"), addr("iot.treasury"), addr("u")
    node = anchor("treasury_management", "redeem_v0", {"args": {"amount": 10**12, "expected_output_amount": 1}},
                  **{"from": src}, to=dst, treasury=treasury, owner=owner, supply_mint=IOT, treasury_mint=HNT,
                  children=[spl("burn", amount=10**12, account=src, mint=IOT, authority=owner),
                            spl("transfer", amount=3_300_000, source=treasury, destination=dst,
                                authority=addr("tm"))])
    tx = TxSpec("redeem").add(node).token(src, IOT, owner).token(dst, HNT, owner).token(treasury, HNT, addr("tm")).build()
    assert summary(flows_of(tx)) == [("0", 0, "transfer", "treasury_redeem", "IOT", 10**12),
                                     ("0", 1, "transfer", "treasury_redeem", "HNT", 3_300_000)]


# --- nothing dropped, nothing invented ------------------------------------------------------------
def test_token_move_under_a_helium_program_without_rule_is_unmatched():
    deposit, vault, owner = addr("my.hnt"), addr("position.vault"), addr("staker")
    node = anchor("voter_stake_registry", "deposit_v0", {"args": {"amount": 5 * 10**8}},
                  children=[spl("transfer", amount=5 * 10**8, source=deposit, destination=vault, authority=owner)])
    tx = TxSpec("vsr").add(node).token(deposit, HNT, owner).token(vault, HNT, addr("position")).build()
    (f,) = flows_of(tx)
    assert (f.ix_path, f.flow_class, f.subtype, f.symbol, f.amount_raw) == ("0.1", "other", "unmatched", "HNT", 5 * 10**8)
    assert f.reason == "transfer of HNT under voter_stake_registry.deposit_v0 matches no flow rule"


def test_undecodable_helium_instruction_is_dead_lettered_and_its_moves_kept():
    from tests.indexer.networks.builders import Node
    src = addr("x.hnt")
    bogus = Node(P["helium_sub_daos"], bytes.fromhex("ffffffffffffffff01"), [addr("x")],
                 children=[spl("transfer", amount=77, source=src, destination=addr("y"), authority=addr("x"))])
    out = classify_transaction(TxSpec("bogus").add(bogus).token(src, HNT, addr("x")).build())
    (dl,) = out.dead_letters
    assert (dl["ix_path"], dl["stage"], dl["reason"], dl["raw_hex"]) == (
        "0", "decode", "unknown_discriminator", "ffffffffffffffff01")
    assert summary(out.flows) == [("0.1", None, "other", "unmatched", "HNT", 77)]


def test_plain_transfers_outside_helium_programs_are_not_flows():
    tx = TxSpec("plain").add(spl("transfer", amount=5, source=addr("a"), destination=addr("b"))).token(
        addr("a"), HNT, addr("o")).build()
    out = classify_transaction(tx)
    assert (out.flows, out.instructions, out.dead_letters) == ([], [], [])


def test_missing_inner_purchase_amounts_become_a_classify_dead_letter():
    node = anchor("data_credits", "mint_data_credits_v0", {"args": {"hnt_amount": 5, "dc_amount": None}})
    out = classify_transaction(TxSpec("no_inner").add(node).build())
    assert out.flows == []
    assert [(d["stage"], d["reason"]) for d in out.dead_letters] == [("classify", "missing_amount")]


def test_unresolvable_mint_dead_letters_the_whole_instruction():
    from tests.indexer.networks.builders import Node
    node = anchor("lazy_distributor", "distribute_rewards_v0",
                  children=[cb_transfer(addr("escrow?"), addr("dest?"), 9)])
    damaged = Node(node.program_id, node.data, node.accounts[:2], node.children)  # rewards_mint [3] missing
    out = classify_transaction(TxSpec("damaged").add(damaged).build())
    assert out.flows == []
    assert [(d["ix_path"], d["stage"], d["reason"]) for d in out.dead_letters] == [("0", "classify", "missing_mint")]


def test_missing_block_time_is_a_dead_letter_not_a_wrong_day():
    node, escrow = _burn_delegated(10)
    out = classify_transaction(TxSpec("no_time", block_time=None).add(node).build())
    assert out.flows == []
    assert [(d["stage"], d["reason"]) for d in out.dead_letters] == [("classify", "missing_block_time")]
    assert BLOCK_TIME  # the builders' default block time is the fixture's
