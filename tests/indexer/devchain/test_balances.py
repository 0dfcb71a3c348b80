"""Simulated balances never go negative, however long or dense the ledger.

Regression: `depinflow devchain serve --days 10 --tx-per-slot 20` stopped with "simulated token
account ... would go negative" (txbuild.py). Root cause: a plan is built before its transaction
executes, and `delegation_claims` can put two claims on the same delegator pool in one transaction;
each claim checked the pool's untouched balance, so two claims that each fit could together overdraw
a pool that long runs had drained. `SimContext.reserve` now counts the plan's earlier debits.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from indexer.decode import eras
from indexer.devchain import accounts as A
from indexer.devchain import gen_helium as GH
from indexer.devchain.context import SimContext
from indexer.devchain.keys import KeyFactory


def _ctx(seed: int) -> SimContext:
    ctx = SimContext(seed=1, rng=random.Random(seed), keys=KeyFactory(1))
    t = int(datetime(2026, 4, 1, tzinfo=UTC).timestamp())          # post HIP-138: claims share one pool
    ctx.at(eras.slot_for_time(t), t, 0.5)
    return ctx


def _execute(ctx: SimContext, plan) -> None:
    ctx.builder.build(payer=ctx.keys.keypair_for(plan.payer), payer_address=plan.payer,
                      keyring=ctx.keys.keypair_for, instructions=plan.instructions, recent_blockhash=A.DAO,
                      lookup=ctx.lookup)


def test_two_claims_on_a_drained_pool_do_not_overdraw_it():
    two_claims = 0
    for seed in range(300):
        ctx = _ctx(seed)
        ctx.token_account(A.DAO_DELEGATOR_POOL_BREAKER, A.HNT, address=A.DAO_DELEGATOR_POOL)
        ctx.tokens.accounts[A.DAO_DELEGATOR_POOL][2] = 60_000_000      # below the largest claim (1e8)
        ctx.begin_plan()
        plan = GH.delegation_claims(ctx)
        claims = sum(1 for ix in plan.instructions if ix.program_id == A.TUKTUK)
        before = ctx.tokens.amount(A.DAO_DELEGATOR_POOL)
        debited = ctx.pending.get(A.DAO_DELEGATOR_POOL, 0)
        _execute(ctx, plan)                                            # raised ValueError before the fix
        assert ctx.tokens.amount(A.DAO_DELEGATOR_POOL) == before - debited >= 0
        two_claims += claims == 2
    assert two_claims > 50          # the case that overdrew is well exercised


def test_reserve_counts_earlier_debits_of_the_same_plan():
    ctx = _ctx(0)
    acct = ctx.token_account(ctx.address("holder"), A.HNT, initial=100)
    ctx.begin_plan()
    ctx.reserve(acct, 60, 1000)
    assert ctx.tokens.amount(acct) == 100             # fits: no top-up
    ctx.reserve(acct, 60, 1000)
    assert ctx.tokens.amount(acct) == 1100            # 120 > 100: topped up
    ctx.reserve(acct, 5000, 10)
    assert ctx.tokens.amount(acct) == 1100 + 4020     # top-up at least the shortfall (5120 - 1100)
    assert ctx.pending[acct] == 5120
    ctx.begin_plan()
    assert ctx.pending == {}
    ctx.reserve(acct, 5120, 1)
    assert ctx.tokens.amount(acct) == 5120            # a new plan starts from the balance alone


def test_funded_is_the_old_single_check_when_nothing_is_pending():
    ctx = _ctx(0)
    owner = ctx.address("buyer")
    ctx.begin_plan()
    acct = ctx.funded(owner, A.DC, 10, headroom=50)
    assert ctx.tokens.amount(acct) == 500
    ctx.begin_plan()
    ctx.funded(owner, A.DC, 400, headroom=50)
    assert ctx.tokens.amount(acct) == 500             # 500 >= 400: untouched
