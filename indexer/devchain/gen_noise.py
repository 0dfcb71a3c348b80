"""Noise: transactions no Helium/Render rule may turn into an event.

Compute-budget-only wrappers, SOL transfers with memos, memo-only, and an unrelated program (a DEX
route) moving a mint nobody watches. They exercise the decoder's "unknown program" paths and the
classifier's silence.
"""

from __future__ import annotations

from indexer.devchain import accounts as A
from indexer.devchain.context import Plan, SimContext
from indexer.devchain.programs import spl_transfer
from indexer.devchain.txbuild import Ix, compute_unit_limit, compute_unit_price, memo, system_transfer


def sol_transfer(ctx: SimContext) -> Plan:
    src = ctx.actor("wallet", 500)
    dst = ctx.keys.signer(f"wallet:{ctx.rng.randrange(500)}")
    if dst == src:
        dst = ctx.address("wallet:exchange")
    ixs = [compute_unit_price(ctx.rng.choice([1, 5000]))] if ctx.rng.random() < 0.5 else []
    ixs.append(system_transfer(src, dst, ctx.rng.randrange(5000, 10**10)))
    if ctx.rng.random() < 0.4:
        ixs.append(memo(f"payment {ctx.rng.randrange(10**6)}", src))
    return Plan(src, ixs, version=ctx.rng.choice(["legacy", 0]), use_lut=False, kind="noise_sol")


def memo_only(ctx: SimContext) -> Plan:
    src = ctx.actor("wallet", 500)
    return Plan(src, [memo(f"gm {ctx.rng.randrange(10**9):x}", src)], version="legacy", use_lut=False,
                kind="noise_memo")


def unrelated_swap(ctx: SimContext) -> Plan:
    user = ctx.actor("trader", 200)
    pool_owner = ctx.address("amm:pool-authority")
    src = ctx.funded(user, A.USDC, 10**9, headroom=100)
    pool = ctx.token_account(pool_owner, A.USDC, initial=10**15)
    amount = ctx.rng.randrange(10**5, 10**9)
    inner = spl_transfer(src, pool, user, amount, mint=A.USDC, checked=True)
    route = Ix(A.UNRELATED_PROGRAM,
               [(user, True, True), (src, False, True), (pool, False, True), (pool_owner, False, False),
                (A.USDC, False, False), (A.TOKEN_PROGRAM, False, False)],
               bytes([0xE5, 0x17, 0xCB, 0x97, 0x7A, 0xE3, 0xAD, 0x2A]) + ctx.rng.randbytes(24),
               name="Route", children=[inner], cu=90_000)
    return Plan(user, [compute_unit_limit(300_000), compute_unit_price(50_000), route], version=0,
                use_lut=False, kind="noise_swap")
