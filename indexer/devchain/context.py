"""Shared state of one ledger generation: keys, balances, randomness and the current block.

Generators (gen_helium, gen_render, gen_noise) read the current slot/time/era from here and
return a `Plan` (top-level instructions + fee payer); the ledger compiles plans into transactions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from indexer.devchain import accounts as A
from indexer.devchain.keys import KeyFactory, ata
from indexer.devchain.txbuild import Ix, LookupTable, TokenLedger, TxBuilder
from indexer.networks.events import utc_day

# The simulated Helium LUT: the accounts most Helium transactions touch (loaded, not static).
LUT_ADDRESSES = [
    A.SYSTEM_PROGRAM, A.TOKEN_PROGRAM, A.ATA_PROGRAM, A.CIRCUIT_BREAKER, A.DATA_CREDITS, A.HELIUM_SUB_DAOS,
    A.LAZY_DISTRIBUTOR, A.REWARDS_ORACLE, A.NO_EMIT, A.VOTER_STAKE_REGISTRY, A.HNT, A.IOT, A.MOBILE, A.DC,
    A.DAO, A.IOT_SUB_DAO, A.MOBILE_SUB_DAO, A.DATA_CREDITS_ACCOUNT, A.DC_ACCOUNT_PAYER, A.HNT_LAZY_DISTRIBUTOR,
    A.DAO_REWARDS_ESCROW, A.DAO_REWARDS_ESCROW_BREAKER, A.DAO_DELEGATOR_POOL, A.DAO_DELEGATOR_POOL_BREAKER,
    A.HNT_MINT_BREAKER, A.IOT_MINT_BREAKER, A.MOBILE_MINT_BREAKER, A.DC_MINT_BREAKER, A.HNT_PRICE_FEED,
    A.SYSVAR_INSTRUCTIONS, A.SYSVAR_CLOCK, A.SYSVAR_RENT, A.HELIUM_ENTITY_MANAGER,
    "cmtDvXumGCrqC1Age74AVPhSRVXJMd8PJS91L8KbNCK", "BGUMAp9Gq7iTEuizy4pqaxsTyUCBK68MDfK752saRPUY",
    "noopb9bkMVfRPU8AsbpTUg8AQkHtKwMYZiFUjNRtMmV",
]


@dataclass(slots=True)
class Plan:
    """One transaction to build: top-level instructions (with CPI trees) and the fee payer."""

    payer: str
    instructions: list[Ix]
    version: str | int = 0
    use_lut: bool = True
    can_fail: bool = True
    kind: str = ""


@dataclass
class SimContext:
    seed: int
    rng: random.Random
    keys: KeyFactory
    tokens: TokenLedger = field(default_factory=TokenLedger)
    lookup: LookupTable = field(default_factory=lambda: LookupTable(A.HELIUM_LUT, LUT_ADDRESSES))
    builder: TxBuilder | None = None
    slot: int = 0
    block_time: int = 0
    day: str = ""
    epoch: int = 0
    day_fraction: float = 0.0            # position of the block inside its UTC day, 0..1
    # debits the plan under construction already makes, per token account (see `reserve`)
    pending: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.builder is None:
            self.builder = TxBuilder(self.tokens)

    def at(self, slot: int, block_time: int, day_fraction: float) -> None:
        self.slot = slot
        self.block_time = block_time
        self.day = utc_day(block_time)
        self.epoch = block_time // 86400
        self.day_fraction = day_fraction

    # -- actors --------------------------------------------------------------------------------
    def actor(self, role: str, pool: int) -> str:
        """A signer picked from a fixed-size pool of actors of one role."""
        return self.keys.signer(f"{role}:{self.rng.randrange(pool)}")

    def signer(self, label: str) -> str:
        return self.keys.signer(label)

    def address(self, label: str) -> str:
        return self.keys.address(label)

    def default_account(self, program_id: str, ix_name: str, account: str, signer: bool) -> str:
        """Accounts the generator does not name: stable per (program, instruction, account),
        a keypair when the spec says the account signs (the builder then signs with it)."""
        label = f"{program_id[:6]}/{ix_name}/{account}"
        return self.keys.signer(label) if signer else self.keys.address(label)

    # -- token accounts ------------------------------------------------------------------------
    def token_account(self, owner: str, mint: str, initial: int = 0, address: str | None = None) -> str:
        addr = address or ata(owner, mint)
        return self.tokens.ensure(addr, mint, owner, initial)

    def funded(self, owner: str, mint: str, need: int, headroom: int = 50) -> str:
        """A token account of `owner` holding at least `need` (topped up outside the simulated
        window: the account existed with that balance before the first block)."""
        addr = self.token_account(owner, mint)
        self.reserve(addr, need, need * headroom)
        return addr

    def reserve(self, address: str, amount: int, topup: int) -> None:
        """Make `amount` spendable from `address` by the plan under construction, on top of what the
        plan already debits from it; if it is not, add `topup` (at least the shortfall) to the opening
        balance ("the account held it before the simulated window").

        WHY per plan: a plan is built before its transaction executes, so two debits of one account
        in one transaction (two delegation claims from the same pool) each saw the untouched balance
        and together could overdraw it - the "would go negative" failure of long, dense ledgers.
        With nothing pending this is exactly the old single check (same bytes for the same seed)."""
        entry = self.tokens.accounts[address]
        held = self.pending.get(address, 0)
        if entry[2] - held < amount:
            entry[2] += max(topup, amount + held - entry[2])
        self.pending[address] = held + amount

    def begin_plan(self) -> None:
        """Forget the pending debits of the previous plan (called by the ledger around each plan)."""
        self.pending.clear()
