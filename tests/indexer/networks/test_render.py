"""Render rules: every SPL Token movement of RENDER, classified by wallet labels (render.json)."""

from __future__ import annotations

import orjson
import pytest

from indexer.decode.spl_token import TOKEN_2022_PROGRAM_ID
from indexer.networks.classify import Classifier, classify_transaction
from indexer.networks.config import load_config
from tests.indexer.networks.builders import RENDER, Node, TxSpec, addr, spl

BURN_OWNER = "rbrnm7nPhfhBxPSh8qhRFrhB5MLnJGMNoyNQPvSi7vq"
BURN_ATA = "GqE7wcwRw86xxMz4pNq5cV3BkM64h3bvajQRQbigYqTX"
CORRECTION_MINT_SIG = "HhdirVKCZo98L8ZBNCtHA1KHTPFpFoA6NG51fjfxaYZpTqa8KiJArbhakiEkNg5r5m7BKBQJpKfDyfW9bVzDNxp"
CORRECTION_BURN_SIG = "6L9XW5Yyq6xxpMsYZvzFbHaC5DsscPVdvu9sFYc1v92bJ75fBRHwmbpRoXEHgC9XLrHbgBVmJB559cRuTDccTb6"


def one_flow(tx, **kw):
    out = classify_transaction(tx, **kw)
    assert not out.dead_letters
    (f,) = out.flows
    assert (f.network, f.mint, f.symbol, f.decimals) == ("render", RENDER, "RENDER", 8)
    return f


@pytest.mark.parametrize("name", ["burn", "burnChecked"])
def test_burn_from_the_burn_wallet_is_bme_usage(name):
    ix = spl(name, amount=123_456_789, decimals=8 if name.endswith("Checked") else None,
             account=BURN_ATA, mint=RENDER, authority=BURN_OWNER)
    f = one_flow(TxSpec(f"bme.{name}").add(ix).token(BURN_ATA, RENDER, BURN_OWNER).build())
    assert (f.ix_path, f.flow_class, f.subtype, f.amount_raw, f.amount) == (
        "0", "usage_fee", "bme_burn", 123_456_789, "1.23456789")
    assert (f.program, f.instruction, f.payer_account, f.payer_owner) == ("spl-token", name, BURN_ATA, BURN_OWNER)


def test_burn_inside_a_multisig_cpi_is_keyed_on_the_token_instruction():
    burn = spl("burnChecked", amount=5 * 10**8, decimals=8, account=BURN_ATA, mint=RENDER, authority=addr("vault"))
    squads = Node(addr("squads-program"), b"\x01" * 9, [addr("ms")], children=[burn])
    f = one_flow(TxSpec("squads").add(squads).token(BURN_ATA, RENDER, BURN_OWNER).build())
    assert (f.ix_path, f.subtype, f.parent_instruction) == ("0.1", "bme_burn", addr("squads-program"))


def test_burn_by_any_other_holder_is_a_holder_burn():
    acct, holder = addr("holder.render"), addr("holder")
    f = one_flow(TxSpec("holder").add(spl("burn", amount=10, account=acct, mint=RENDER, authority=holder))
                 .token(acct, RENDER, holder).build())
    assert (f.flow_class, f.subtype, f.payer_owner) == ("other", "holder_burn", holder)


@pytest.mark.parametrize("name", ["mintTo", "mintToChecked"])
def test_mint_is_emission(name):
    dest = addr("emission.wallet")
    ix = spl(name, amount=76_056_700_000_000, decimals=8 if name.endswith("Checked") else None,
             mint=RENDER, account=dest, mintAuthority=addr("render.mint.authority"))
    f = one_flow(TxSpec(f"mint.{name}").add(ix).build())
    assert (f.flow_class, f.subtype, f.amount, f.recipient_account) == (
        "emission", "mint", "760567.00000000", dest)


def test_correction_pairs_are_neither_usage_nor_emission():
    mint = TxSpec("c").add(spl("mintTo", amount=5, mint=RENDER, account=addr("x"))).build()
    mint.signature = CORRECTION_MINT_SIG
    f = one_flow(mint)
    assert (f.flow_class, f.subtype) == ("other", "correction")
    burn = TxSpec("c").add(spl("burn", amount=5, account=BURN_ATA, mint=RENDER, authority=BURN_OWNER)).token(
        BURN_ATA, RENDER, BURN_OWNER).build()
    burn.signature = CORRECTION_BURN_SIG
    g = one_flow(burn)
    assert (g.flow_class, g.subtype) == ("other", "correction")


def test_deposits_into_the_burn_wallet_are_transfers_even_without_the_mint_account():
    src, owner = addr("foundation.render"), addr("foundation")
    checked = spl("transferChecked", amount=7, decimals=8, source=src, mint=RENDER, destination=BURN_ATA,
                  authority=owner)
    plain = spl("transfer", amount=9, source=src, destination=BURN_ATA, authority=owner)
    tx = TxSpec("deposit").add(checked, plain).token(src, RENDER, owner).token(BURN_ATA, RENDER, BURN_OWNER).build()
    out = classify_transaction(tx)
    assert [(f.ix_path, f.flow_class, f.subtype, f.amount_raw, f.recipient_owner) for f in out.flows] == [
        ("0", "transfer", "burn_wallet_deposit", 7, BURN_OWNER), ("1", "transfer", "burn_wallet_deposit", 9, BURN_OWNER)]


def test_plain_transfer_found_only_through_token_balances():
    src, dst = addr("a.render"), addr("b.render")
    tx = TxSpec("balances_only").add(spl("transfer", amount=11, source=src, destination=dst)).token(
        src, RENDER, addr("a")).token(dst, RENDER, addr("b")).build()
    assert RENDER not in tx.account_keys  # a plain Transfer names no mint: found via token balances
    f = one_flow(tx)
    assert (f.flow_class, f.subtype, f.payer_owner, f.recipient_owner) == (
        "transfer", "token_transfer", addr("a"), addr("b"))


def test_any_render_movement_in_a_wormhole_transaction_is_migration():
    dest = addr("upgrader.render")
    redeem = Node("wormDTUJ6AWPNvk59vGQbDvGJmqbDTdgWgAqcLBCgUb", b"\x03", [addr("vaa")],
                  children=[spl("transfer", amount=10**10, source=addr("reserve"), destination=dest)])
    tx = TxSpec("wormhole").add(redeem).token(addr("reserve"), RENDER, addr("r")).token(dest, RENDER, addr("u")).build()
    f = one_flow(tx)
    assert (f.flow_class, f.subtype, f.reason) == ("other", "migration", "transaction invokes wormhole_token_bridge")


def test_token_2022_program_is_understood_too():
    acct = addr("t22")
    ix = spl("burnChecked", amount=3, decimals=8, account=acct, mint=RENDER, authority=addr("h"),
             program_id=TOKEN_2022_PROGRAM_ID)
    f = one_flow(TxSpec("t22").add(ix).token(acct, RENDER, addr("h")).build())
    assert (f.program, f.subtype) == ("spl-token-2022", "holder_burn")


def test_user_label_file_adds_a_burn_wallet_without_code_changes(tmp_path):
    wallet, acct = addr("compute.burn.wallet"), addr("compute.burn.ata")
    extra = tmp_path / "labels.json"
    extra.write_bytes(orjson.dumps({"network": "render", "burn_wallets": [
        {"owner": wallet, "token_accounts": [acct], "label": "compute subnet burn wallet"}]}))
    tx = TxSpec("compute").add(spl("burn", amount=8, account=acct, mint=RENDER, authority=wallet)).token(
        acct, RENDER, wallet).build()
    assert one_flow(tx).subtype == "holder_burn"
    cfg = load_config([extra])
    assert len(cfg.render.burn_wallets) == 2          # appended, the shipped wallet kept
    (f,) = Classifier(config=cfg).classify(tx).flows
    assert (f.flow_class, f.subtype) == ("usage_fee", "bme_burn")


def test_render_movements_are_recorded_as_instructions():
    acct = addr("rec")
    out = classify_transaction(TxSpec("rec").add(
        spl("burn", amount=1, account=acct, mint=RENDER, authority=addr("o"))).token(acct, RENDER, addr("o")).build())
    (r,) = out.instructions
    assert (r["program"], r["instruction"], r["args"], r["accounts"]["source"]) == ("spl-token", "burn", {"amount": 1}, acct)
