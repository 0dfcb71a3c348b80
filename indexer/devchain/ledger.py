"""The simulated ledger: blocks of real Solana transactions plus the ground truth behind them.

Slots and times: each simulated UTC day keeps the *real* slot range of that day under the project's
slot<->time rule (`indexer.decode.eras.slot_for_time`: 2.5 slots/s, anchored on a mainnet
transaction), but only `slots_per_day` of its 216,000 slots carry a block (time compression). The
slots in between are skipped, exactly as Solana reports skipped slots. This keeps every account
layout era aligned: a block at or after an era boundary slot is also at or after its date.

Forks: a forked block is a real block at its own slot whose parent is the previous canonical
block; the next canonical block ignores it (its parent is the same). It is visible at processed /
confirmed until the finalized tip passes it, then it vanishes. Its transactions never touch the
canonical balances (state is rolled back after generating it) and its events are expected at
`confirmed` only (`forked=True`), never in the final truth.

Determinism: all randomness comes from one `random.Random(seed)`, keys from (seed, label), and
signatures are ed25519 (deterministic), so the same SimConfig yields the same bytes.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from solders.pubkey import Pubkey

from indexer.devchain import accounts as A
from indexer.devchain import gen_helium as GH
from indexer.devchain import gen_noise as GN
from indexer.devchain import gen_render as GR
from indexer.devchain.context import Plan, SimContext
from indexer.devchain.keys import KeyFactory
from indexer.devchain.txbuild import Ix, TxRecord, TxTooLarge
from indexer.networks.events import make_event_id

SLOTS_PER_REAL_DAY = 216_000


@dataclass
class SimConfig:
    """Size and shape of a simulated ledger. The defaults make a small, fast "day" for tests
    (~3,000 transactions generated in a couple of seconds)."""

    seed: int = 7
    days: int = 1
    start_day: str = "2026-03-28"
    slots_per_day: int = 2400              # blocks per UTC day before skips (time compression)
    tx_per_slot: float = 1.3               # mean transactions per block (besides scheduled cranks)
    networks: tuple[str, ...] = ("helium", "render")
    fork_rate: float = 0.004               # share of blocks that are confirmed but never finalized
    failed_rate: float = 0.03              # share of transactions that fail (meta.err set)
    skipped_rate: float = 0.05             # share of block positions with no block
    noise_weight: float = 1.0              # scale of non-Helium/Render traffic
    legacy_share: float = 0.2              # Helium transactions sent as legacy messages

    def __post_init__(self) -> None:
        if not 1 <= self.slots_per_day <= SLOTS_PER_REAL_DAY:
            raise ValueError(f"slots_per_day must be in 1..{SLOTS_PER_REAL_DAY}")
        self.networks = tuple(self.networks)
        date.fromisoformat(self.start_day)


@dataclass(slots=True)
class Block:
    slot: int
    parent_slot: int
    blockhash: str
    previous_blockhash: str
    block_time: int
    block_height: int
    transactions: list[TxRecord] = field(default_factory=list)
    forked: bool = False


_HELIUM_MIX = [
    (GH.burn_delegated, 14), (GH.lazy_distributor_payout, 18), (GH.delegation_claims, 5), (GH.dc_purchase, 4),
    (GH.dc_auto_top_off, 1), (GH.dc_delegation, 2), (GH.onboarding, 3), (GH.location_assert, 3),
    (GH.hex_boost, 1), (GH.other_burn, 1), (GH.treasury_redeem, 1), (GH.fanout_distribute, 0.6),
    (GH.mobile_onboarding, 1), (GH.mini_fanout_distribute, 0.5),
]
_RENDER_MIX = [
    (GR.token_transfer, 12), (GR.burn_wallet_deposit, 2), (GR.bme_burn, 0.6), (GR.holder_burn, 0.8),
    (GR.wormhole_migration, 0.4),
]
_NOISE_MIX = [(GN.sol_transfer, 8), (GN.memo_only, 2), (GN.unrelated_swap, 4)]


def _day_start(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def _hash32(*parts) -> str:
    return str(Pubkey(hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()))


class Ledger:
    """Blocks (ordered by slot) and the ground truth of what they contain."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.blocks: list[Block] = []
        self.events: list[dict] = []
        self.by_slot: dict[int, Block] = {}
        self.tx_index: dict[str, tuple[Block, int]] = {}
        self.tokens = None          # final TokenLedger (for getAccountInfo)
        self.lookup = None          # the simulated LUT
        self.recorded_signatures: set[str] = set()
        self._watched: frozenset[str] | None = None

    # -- queries -------------------------------------------------------------------------------
    @property
    def first_slot(self) -> int:
        return self.blocks[0].slot if self.blocks else 0

    @property
    def last_slot(self) -> int:
        return self.blocks[-1].slot if self.blocks else 0

    def transactions(self):
        for b in self.blocks:
            yield from b.transactions

    def tx_count(self) -> int:
        return sum(len(b.transactions) for b in self.blocks)

    def expected_events(self) -> list[dict]:
        """Every event the classifier must emit at `confirmed` (forked=True ones are later retracted)."""
        return list(self.events)

    def truth_lines(self, discovery: str = "all") -> list[dict]:
        """Finalized ground truth: one line per (network, day, flow_class, subtype, mint), sorted.

        `discovery="addresses"` keeps only events of transactions that name a watched address
        (`indexer.networks.watch`): what a listener discovering through getSignaturesForAddress can
        ever see. The difference is plain SPL `Transfer`s of RENDER between holders (no mint, no
        watched account in the transaction): neither usage nor emission, but real transfers.
        """
        if discovery not in ("all", "addresses"):
            raise ValueError(f"discovery must be 'all' or 'addresses', not {discovery!r}")
        keep = self.discoverable if discovery == "addresses" else (lambda _sig: True)
        sums: dict[tuple, int] = defaultdict(int)
        for e in self.events:
            if e["forked"] or not keep(e["signature"]):
                continue
            sums[(e["network"], e["day"], e["flow_class"], e["subtype"], e["mint"])] += e["amount_raw"]
        return [
            {"network": k[0], "day": k[1], "flow_class": k[2], "subtype": k[3], "mint": k[4], "amount_raw": v}
            for k, v in sorted(sums.items())
        ]

    def discoverable(self, signature: str) -> bool:
        """Does the transaction name a watched program, mint or account (so address discovery finds it)?"""
        from indexer.networks.watch import watched_addresses

        if self._watched is None:
            self._watched = frozenset(a for addrs in watched_addresses().values() for a in addrs)
        block, i = self.tx_index[signature]
        return not self._watched.isdisjoint(block.transactions[i].account_keys)

    # -- building --------------------------------------------------------------------------------
    def _append(self, block: Block) -> None:
        self.blocks.append(block)
        self.by_slot[block.slot] = block
        for i, tx in enumerate(block.transactions):
            self.tx_index[tx.signature] = (block, i)

    def add_recorded(self, get_transaction_result: dict, events: list[dict] | None = None) -> TxRecord:
        """Serve a real getTransaction result next to the generated transactions.

        The transaction lands in the block at its recorded slot (a new block when the ledger has
        none there). `events` (same shape as expected_events, without signature/slot) adds what a
        test knows about it to the truth; by default a recorded transaction adds nothing.
        """
        from indexer.devchain.recorded import record_from_result

        rec = record_from_result(get_transaction_result)
        if rec.signature in self.tx_index:
            raise ValueError(f"transaction {rec.signature} is already in the ledger")
        block = self.by_slot.get(rec.slot)
        if block is None:
            block = self._insert_block(rec.slot, rec.block_time)
        block.transactions.append(rec)
        rec.block_time = block.block_time
        self.tx_index[rec.signature] = (block, len(block.transactions) - 1)
        self.recorded_signatures.add(rec.signature)
        for ev in events or []:
            full = dict(ev)
            full.setdefault("signature", rec.signature)
            full.setdefault("slot", rec.slot)
            full.setdefault("forked", block.forked)
            full.setdefault("event_id", make_event_id(rec.signature, full["ix_path"], full.get("leg")))
            self.events.append(full)
        return rec

    def _insert_block(self, slot: int, block_time: int | None) -> Block:
        import bisect

        slots = [b.slot for b in self.blocks]
        pos = bisect.bisect_left(slots, slot)
        parent = next((b for b in reversed(self.blocks[:pos]) if not b.forked), None)
        block = Block(
            slot=slot,
            parent_slot=parent.slot if parent else slot - 1,
            blockhash=_hash32(self.config.seed, "recorded-block", slot),
            previous_blockhash=parent.blockhash if parent else _hash32(self.config.seed, "genesis"),
            block_time=block_time if block_time is not None else (parent.block_time if parent else 0),
            block_height=(parent.block_height + 1) if parent else 0,
        )
        self.blocks.insert(pos, block)
        self.by_slot[slot] = block
        # later canonical blocks keep their recorded parents; fix the direct successor's link
        nxt = next((b for b in self.blocks[pos + 1:] if not b.forked), None)
        if nxt is not None and nxt.parent_slot < slot:
            nxt.parent_slot = slot
            nxt.previous_blockhash = block.blockhash
        for i, tx in enumerate(block.transactions):
            self.tx_index[tx.signature] = (block, i)
        return block


# ---------------------------------------------------------------------------------------------
# generation


class _Generator:
    def __init__(self, config: SimConfig) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.keys = KeyFactory(config.seed)
        self.ctx = SimContext(seed=config.seed, rng=self.rng, keys=self.keys)
        self.ledger = Ledger(config)
        mix = list(_NOISE_MIX) if config.noise_weight else []
        mix = [(f, w * config.noise_weight) for f, w in mix]
        if "helium" in config.networks:
            mix += _HELIUM_MIX
        if "render" in config.networks:
            mix += _RENDER_MIX
        if not mix:
            raise ValueError("nothing to generate: no networks and no noise")
        self.mix_funcs = [f for f, _ in mix]
        self.mix_weights = [w for _, w in mix]
        self.recent_hashes: list[str] = []
        self._recent_sigs: list[set[str]] = []   # signatures of the last blocks (duplicates dropped)

    # -- per day schedule --------------------------------------------------------------------
    def _schedule(self, day: str, n_pos: int) -> dict[int, list]:
        """Fixed-time activity of a day: epoch cranks in the first ~20 minutes, no-emit burns,
        RENDER mints. Returns position -> list of plan factories."""
        rng = self.rng
        sched: dict[int, list] = defaultdict(list)
        epoch = _day_start(day) // 86400
        window = max(6, n_pos * 1200 // 86400)
        if "helium" in self.cfg.networks:
            prev = epoch - 1
            base = rng.randrange(0, max(1, window - 5))
            sched[base].append(lambda c: GH.utility_crank(c, A.IOT, prev))
            sched[base].append(lambda c: GH.utility_crank(c, A.MOBILE, prev))
            sched[min(base + 1, n_pos - 1)].append(lambda c: GH.epoch_crank(c, A.IOT, prev))
            sched[min(base + 2, n_pos - 1)].append(lambda c: GH.epoch_crank(c, A.MOBILE, prev))
            sched[min(base + 3, n_pos - 1)].append(self._maybe_hst(prev))
            mints = [A.HNT, A.IOT, A.MOBILE]
            for m in mints:
                pos = rng.randrange(window, n_pos) if n_pos > window else n_pos - 1
                sched[pos].append(lambda c, m=m: GH.no_emit(c, m))
        if "render" in self.cfg.networks:
            for _ in range(rng.choice([1, 1, 2])):
                sched[rng.randrange(n_pos)].append(GR.emission_mint)
            for _ in range(3):
                sched[rng.randrange(n_pos)].append(GR.bme_burn)
        return sched

    @staticmethod
    def _maybe_hst(epoch: int):
        def f(c: SimContext):
            if GH._era_after(c, "hip138"):
                return None
            return GH.hst_crank(c, epoch)
        return f

    # -- transactions ------------------------------------------------------------------------
    def _build(self, plan: Plan, forked: bool) -> tuple[TxRecord, list[dict]]:
        ctx, cfg, rng = self.ctx, self.cfg, self.rng
        version = plan.version
        if version == 0 and plan.use_lut and rng.random() < cfg.legacy_share:
            version = "legacy"
        fail_at = None
        if plan.can_fail and rng.random() < cfg.failed_rate:
            fail_at = next((i for i, ix in enumerate(plan.instructions) if ix.program_id != A.COMPUTE_BUDGET_PROGRAM),
                           None)
        recent = self.recent_hashes[-1 - rng.randrange(min(len(self.recent_hashes), 20))] \
            if self.recent_hashes else _hash32(cfg.seed, "genesis")
        kwargs = dict(
            payer=self.keys.keypair_for(plan.payer), payer_address=plan.payer, keyring=self.keys.keypair_for,
            instructions=plan.instructions, recent_blockhash=recent, lookup=ctx.lookup if plan.use_lut else None,
            fail_at=fail_at, slot=ctx.slot, block_time=ctx.block_time, priority_fee=_priority_fee(plan.instructions),
        )
        try:
            rec = ctx.builder.build(version=version, **kwargs)
        except TxTooLarge:
            if version != "legacy":
                raise
            rec = ctx.builder.build(version=0, **kwargs)   # what a wallet does: v0 + the LUT
        events: list[dict] = []
        if rec.err is None:
            for path, ix in _walk_paths(plan.instructions):
                single = len(ix.events) == 1      # flow rules: leg None when one event
                for ev in ix.events:
                    leg = None if single else ev.get("leg")
                    full = {
                        "event_id": make_event_id(rec.signature, path, leg),
                        "network": ev["network"], "flow_class": ev["flow_class"], "subtype": ev["subtype"],
                        "mint": ev["mint"], "amount_raw": ev["amount_raw"], "day": ev.get("day", ctx.day),
                        "signature": rec.signature, "slot": ctx.slot, "forked": forked, "ix_path": path,
                        "leg": leg, "kind": plan.kind,
                    }
                    for k in ("epoch", "sub_dao"):
                        if k in ev:
                            full[k] = ev[k]
                    events.append(full)
        return rec, events

    def _random_plan(self) -> Plan | None:
        f = self.rng.choices(self.mix_funcs, self.mix_weights)[0]
        return f(self.ctx)

    # -- main loop ---------------------------------------------------------------------------
    def iter_blocks(self) -> Iterator[tuple[Block, list[dict]]]:
        """Blocks in slot order with the ground-truth events of each, generated one at a time.

        WHY a generator: a long ledger (millions of transactions) does not fit in memory; a consumer
        (`Ledger` for tests, `indexer.devchain.stream` for long runs) keeps what it needs. The random
        draws happen in exactly the same order as when everything was kept, so a given SimConfig
        still yields the same bytes. `self.ctx.tokens` is the live balance state after the last
        yielded block."""
        cfg, rng, ctx = self.cfg, self.rng, self.ctx
        start = _day_start(cfg.start_day)
        from indexer.decode import eras

        parent: Block | None = None
        for d in range(cfg.days):
            day_start = start + d * 86400
            day = datetime.fromtimestamp(day_start, UTC).strftime("%Y-%m-%d")
            first_slot = eras.slot_for_time(day_start)
            n_pos = cfg.slots_per_day
            sched = self._schedule(day, n_pos)
            for pos in range(n_pos):
                slot = first_slot + pos * SLOTS_PER_REAL_DAY // n_pos
                block_time = day_start + pos * 86400 // n_pos
                fixed = sched.get(pos, [])
                if not fixed and parent is not None and rng.random() < cfg.skipped_rate:
                    continue
                forked = bool(not fixed and parent is not None and rng.random() < cfg.fork_rate)
                ctx.at(slot, block_time, pos / n_pos)
                n = int(cfg.tx_per_slot)
                if rng.random() < cfg.tx_per_slot - n:
                    n += 1
                if forked:
                    saved_tokens = {a: list(v) for a, v in ctx.tokens.accounts.items()}
                    saved_lamports = dict(ctx.builder.lamports)
                txs: list[TxRecord] = []
                events: list[dict] = []
                block_sigs: set[str] = set()
                for factory in fixed:
                    ctx.begin_plan()
                    plan = factory(ctx)
                    if plan is not None:
                        rec, evs = self._build(plan, forked)
                        if self._fresh(rec.signature, block_sigs):
                            txs.append(rec)
                            events.extend(evs)
                for _ in range(n):
                    ctx.begin_plan()
                    plan = self._random_plan()
                    if plan is None:
                        continue
                    rec, evs = self._build(plan, forked)
                    if self._fresh(rec.signature, block_sigs):
                        txs.append(rec)
                        events.extend(evs)
                self._recent_sigs.append(block_sigs)
                if len(self._recent_sigs) > 300:
                    del self._recent_sigs[0]
                blockhash = _hash32(cfg.seed, "block", slot)
                block = Block(
                    slot=slot,
                    parent_slot=parent.slot if parent else slot - 1,
                    blockhash=blockhash,
                    previous_blockhash=parent.blockhash if parent else _hash32(cfg.seed, "genesis"),
                    block_time=block_time,
                    block_height=(parent.block_height + 1) if parent else 300_000_000 + (slot - 400_000_000) // 10,
                    transactions=txs,
                    forked=forked,
                )
                if forked:
                    ctx.tokens.accounts.clear()
                    ctx.tokens.accounts.update(saved_tokens)
                    ctx.builder.lamports.clear()
                    ctx.builder.lamports.update(saved_lamports)
                else:
                    parent = block
                    self.recent_hashes.append(blockhash)
                    if len(self.recent_hashes) > 64:
                        del self.recent_hashes[:32]
                yield block, events

    def _fresh(self, signature: str, block_sigs: set[str]) -> bool:
        """False for a transaction identical to one of the last 300 blocks (same message, same
        signature: e.g. a crank re-planned with the same accounts and recent blockhash). A cluster
        rejects it (AlreadyProcessed), so it must not be served nor counted in the truth: counted
        twice, its events made the truth exceed every indexer by one event (issue 9)."""
        if signature in block_sigs or any(signature in sigs for sigs in self._recent_sigs):
            return False
        block_sigs.add(signature)
        return True

    def run(self) -> Ledger:
        ledger = self.ledger
        for block, events in self.iter_blocks():
            ledger.events.extend(events)
            ledger._append(block)
        ledger.tokens = self.ctx.tokens
        ledger.lookup = self.ctx.lookup
        return ledger


def _walk_paths(instructions: list[Ix]):
    """(path, instruction) in execution order, paths per the model convention ("2", "2.1", "2.1.1")."""
    stack = [(str(i), ix) for i, ix in reversed(list(enumerate(instructions)))]
    while stack:
        path, ix = stack.pop()
        yield path, ix
        for k in range(len(ix.children), 0, -1):
            stack.append((f"{path}.{k}", ix.children[k - 1]))


def _priority_fee(instructions: list[Ix]) -> int:
    limit, price = 200_000, 0
    for ix in instructions:
        if ix.program_id == A.COMPUTE_BUDGET_PROGRAM and ix.data:
            if ix.data[0] == 2:
                limit = int.from_bytes(ix.data[1:5], "little")
            elif ix.data[0] == 3:
                price = int.from_bytes(ix.data[1:9], "little")
    return -(-limit * price // 1_000_000)


def generate_ledger(config: SimConfig) -> Ledger:
    """Generate the ledger for `config` (deterministic: same config -> same bytes)."""
    return _Generator(config).run()
