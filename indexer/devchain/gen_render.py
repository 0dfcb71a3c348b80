"""Render activity: plain SPL Token instructions on the RENDER mint (Render has no program).

Ground truth per the flow rules: burns from the burn wallet's ATA are usage fees (bme_burn),
other burns holder burns, MintTo emissions, transfers into the burn ATA deposits, other transfers
token transfers, and every RENDER movement in a transaction that invokes Wormhole is a migration.
The burn wallet is modelled as an SPL multisig (authority account + signer accounts follow), the
only way to sign for a real, public owner address without its key.
"""

from __future__ import annotations

from indexer.devchain import accounts as A
from indexer.devchain.context import Plan, SimContext
from indexer.devchain.programs import spl_burn, spl_mint_to, spl_transfer
from indexer.devchain.txbuild import Ix, compute_unit_limit, compute_unit_price

R = "render"
UNIT = 10**8


def _ev(flow_class: str, subtype: str, amount: int) -> dict:
    return {"network": R, "flow_class": flow_class, "subtype": subtype, "mint": A.RENDER, "amount_raw": int(amount)}


def _budget(ctx: SimContext) -> list[Ix]:
    if ctx.rng.random() < 0.5:
        return []
    return [compute_unit_limit(50_000), compute_unit_price(ctx.rng.choice([1000, 10_000, 200_000]))]


def _burn_multisig(ctx: SimContext) -> list[str]:
    return [ctx.signer("render:burn-multisig:0"), ctx.signer("render:burn-multisig:1")]


def _burn_ata(ctx: SimContext) -> str:
    addr = ctx.token_account(A.RENDER_BURN_WALLET, A.RENDER, address=A.RENDER_BURN_ATA)
    if ctx.tokens.amount(addr) == 0:
        ctx.tokens.accounts[addr][2] = 25_000 * UNIT     # deposits accumulated before the window
    return addr


def bme_burn(ctx: SimContext) -> Plan:
    """Burn(Checked) from the burn wallet ATA: the BME usage fee."""
    src = _burn_ata(ctx)
    amount = min(ctx.rng.randrange(100 * UNIT, 5_000 * UNIT), ctx.tokens.amount(src))
    signers = _burn_multisig(ctx)
    ix = spl_burn(src, A.RENDER, A.RENDER_BURN_WALLET, amount, checked=ctx.rng.random() < 0.5,
                  multisig_signers=signers, events=[_ev("usage_fee", "bme_burn", amount)])
    return Plan(signers[0], _budget(ctx) + [ix], version=ctx.rng.choice(["legacy", 0]), use_lut=False,
                kind="render_bme_burn")


def burn_wallet_deposit(ctx: SimContext) -> Plan:
    """The Foundation (or a market maker) deposits RENDER into the burn wallet ATA."""
    owner = ctx.actor("render:depositor", 3)
    amount = ctx.rng.randrange(50 * UNIT, 3_000 * UNIT)
    src = ctx.funded(owner, A.RENDER, amount, headroom=200)
    dst = _burn_ata(ctx)
    checked = ctx.rng.random() < 0.6
    ix = spl_transfer(src, dst, owner, amount, mint=A.RENDER, checked=checked,
                      events=[_ev("transfer", "burn_wallet_deposit", amount)])
    return Plan(owner, _budget(ctx) + [ix], version=ctx.rng.choice(["legacy", 0]), use_lut=False,
                kind="render_deposit")


def holder_burn(ctx: SimContext) -> Plan:
    owner = ctx.actor("render:holder", 400)
    amount = ctx.rng.randrange(1, 20 * UNIT)
    src = ctx.funded(owner, A.RENDER, amount, headroom=100)
    ix = spl_burn(src, A.RENDER, owner, amount, checked=ctx.rng.random() < 0.5,
                  events=[_ev("other", "holder_burn", amount)])
    return Plan(owner, _budget(ctx) + [ix], version="legacy", use_lut=False, kind="render_holder_burn")


def emission_mint(ctx: SimContext) -> Plan:
    """MintTo(Checked) by the (unpublished) mint authority into an emissions wallet."""
    authority = ctx.signer("render:mint-authority")
    dest_owner = ctx.signer(f"render:emissions-wallet:{ctx.rng.randrange(4)}")
    dest = ctx.token_account(dest_owner, A.RENDER)
    amount = ctx.rng.randrange(10_000 * UNIT, 800_000 * UNIT)
    ix = spl_mint_to(A.RENDER, dest, authority, amount, checked=ctx.rng.random() < 0.5,
                     events=[_ev("emission", "mint", amount)])
    return Plan(authority, _budget(ctx) + [ix], version="legacy", use_lut=False, kind="render_mint")


def token_transfer(ctx: SimContext) -> Plan:
    """Ordinary RENDER transfers: top-level, or CPI from an unrelated program (a DEX route)."""
    owner = ctx.actor("render:holder", 400)
    to_owner = ctx.keys.signer(f"render:holder:{ctx.rng.randrange(400)}")
    if to_owner == owner:
        to_owner = ctx.keys.signer("render:holder:cex")
    amount = ctx.rng.randrange(1, 5_000 * UNIT)
    src = ctx.funded(owner, A.RENDER, amount, headroom=50)
    dst = ctx.token_account(to_owner, A.RENDER)
    checked = ctx.rng.random() < 0.7
    t = spl_transfer(src, dst, owner, amount, mint=A.RENDER, checked=checked,
                     events=[_ev("transfer", "token_transfer", amount)])
    if ctx.rng.random() < 0.25:
        route = Ix(A.UNRELATED_PROGRAM, [(owner, True, False), (src, False, True), (dst, False, True),
                                         (A.RENDER, False, False), (A.TOKEN_PROGRAM, False, False)],
                   bytes([0xE5, 0x17, 0xCB, 0x97, 0x7A, 0xE3, 0xAD, 0x2A]) + ctx.rng.randbytes(16),
                   name="Route", children=[t], cu=60_000)
        return Plan(owner, _budget(ctx) + [route], version=0, use_lut=False, kind="render_transfer_cpi")
    return Plan(owner, _budget(ctx) + [t], version=ctx.rng.choice(["legacy", 0]), use_lut=False,
                kind="render_transfer")


def wormhole_migration(ctx: SimContext) -> Plan:
    """A Wormhole token-bridge redemption that releases RENDER to an upgrader (migration)."""
    user = ctx.actor("render:upgrader", 50)
    amount = ctx.rng.randrange(UNIT, 10_000 * UNIT)
    reserve_owner = ctx.address("render:reserve-owner")
    reserve = ctx.token_account(reserve_owner, A.RENDER, address=A.RENDER_TREASURY_ACCOUNT)
    ctx.reserve(reserve, amount, amount * 10_000)
    dst = ctx.token_account(user, A.RENDER)
    t = spl_transfer(reserve, dst, reserve_owner, amount, mint=A.RENDER, checked=True,
                     events=[_ev("other", "migration", amount)])
    vaa = ctx.address(f"wormhole:vaa:{ctx.rng.randrange(1 << 40)}")
    bridge = Ix(A.WORMHOLE_TOKEN_BRIDGE,
                [(user, True, True), (vaa, False, False), (reserve, False, True), (dst, False, True),
                 (A.RENDER, False, False), (A.WORMHOLE_CORE, False, False), (A.TOKEN_PROGRAM, False, False),
                 (A.SYSTEM_PROGRAM, False, False)],
                bytes([3]), children=[t], cu=80_000)
    return Plan(user, _budget(ctx) + [bridge], version="legacy", use_lut=False, kind="render_migration")
