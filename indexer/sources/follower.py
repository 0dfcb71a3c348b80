"""Follower: backfill + live tail + finalizer over one checkpoint, the engine behind `depinflow listen`.

Start-up decides the seam once and makes it durable before anything is published:
- first start: S = the finalized slot now; per address, its newest finalized signature with slot <= S.
  The backfill owns slots <= S (published as finalized), the live tail slots > S.
- restart: the stored seam, backfill cursors and live watermarks are reused; an address added to the
  configuration since gets its own seam lookup at the same S (so it is backfilled and followed too).
- a lower bound that moved earlier re-opens the backfill below where it had stopped.
Backfill and live run concurrently; the checkpoint is saved at most every `checkpoint_interval` s
and once more at shutdown, always with positions whose work Kafka acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog

from indexer.checkpoint import Checkpoint, CheckpointError, CheckpointStore, SigPos
from indexer.rpc import RpcClient
from indexer.sources.backfill import Backfill, BackfillSettings
from indexer.sources.blocks import BlockSettings, BlockWalker, TxFilter
from indexer.sources.common import Stopped, find_seam, patient
from indexer.sources.finalizer import PendingLog
from indexer.sources.live import LiveSettings, LiveTail
from indexer.sources.types import LowerBound, Processor, SourceStats

log = structlog.get_logger("indexer.sources.follower")


@dataclass
class FollowerSettings:
    addresses: list[str]
    lower: LowerBound = field(default_factory=LowerBound)
    backfill: BackfillSettings = field(default_factory=BackfillSettings)
    live: LiveSettings = field(default_factory=LiveSettings)
    checkpoint_interval: float = 1.0
    follow_live: bool = True
    networks: list[str] = field(default_factory=list)
    mode: str = "addresses"           # addresses (getSignaturesForAddress) | blocks (getBlock walk)
    # address-mode backfill: who fetches + decodes + publishes a chunk of signatures (None: this process)
    chunk_runner: object = None
    blocks: BlockSettings = field(default_factory=BlockSettings)


class Follower:
    def __init__(self, rpc: RpcClient, processor: Processor, store: CheckpointStore | None,
                 settings: FollowerSettings, stats: SourceStats | None = None) -> None:
        self.rpc = rpc
        self.processor = processor
        self.store = store
        self.s = settings
        self.stats = stats or SourceStats()
        self.stop = asyncio.Event()
        self.cp: Checkpoint | None = None
        self.backfill: Backfill | None = None
        self.live: LiveTail | None = None
        self.walker: BlockWalker | None = None
        self._dirty = False
        self._prior_submitted_low: int | None = None
        self._prior_live_high: int | None = None

    # -- start-up -----------------------------------------------------------------------------------
    async def prepare(self) -> Checkpoint:
        cp = (self.store.load() if self.store else None) or Checkpoint()
        self._prior_submitted_low = cp.submitted_backfill_low
        self._prior_live_high = cp.submitted_live_high
        if cp.updated_at and cp.mode != self.s.mode:
            raise CheckpointError(f"checkpoint was written in {cp.mode} mode, this run is in {self.s.mode} mode; "
                                  "use another checkpoint file")
        cp.mode = self.s.mode
        if self.s.mode == "blocks":
            if cp.block_slot is None:
                cp.from_slot, cp.since_ts = self.s.lower.from_slot, self.s.lower.since_ts
            cp.networks = list(self.s.networks) or cp.networks
            self.cp = cp
            self.save()
            return cp
        self._apply_lower_bound(cp)
        if cp.seam_slot is None:
            cp.seam_slot = await patient(lambda: self.rpc.get_slot("finalized"), what="getSlot:seam",
                                         stats=self.stats, stop=self.stop)
            log.info("seam_chosen", seam_slot=cp.seam_slot)
        for addr in self.s.addresses:
            st = cp.address(addr)
            if not st.seam_known:
                info = await find_seam(self.rpc, addr, cp.seam_slot, limit=self.s.backfill.page_limit,
                                       stats=self.stats, stop=self.stop)
                st.seam = SigPos(info.signature, info.slot, info.block_time) if info else None
                st.seam_known = True
        cp.networks = list(self.s.networks) or cp.networks
        self.cp = cp
        self.save()
        return cp

    def _apply_lower_bound(self, cp: Checkpoint) -> None:
        new = self.s.lower
        if cp.seam_slot is None or (new.from_slot is None and new.since_ts is None):
            if cp.seam_slot is None:
                cp.from_slot, cp.since_ts = new.from_slot, new.since_ts
            else:  # restart without a bound: keep the stored one
                self.s.lower = LowerBound(cp.from_slot, cp.since_ts)
            return
        earlier = ((new.from_slot is not None and (cp.from_slot is None or new.from_slot < cp.from_slot))
                   or (new.since_ts is not None and (cp.since_ts is None or new.since_ts < cp.since_ts)))
        if earlier:
            log.info("backfill_reopened", from_slot=new.from_slot, since_ts=new.since_ts)
            for st in cp.addresses.values():
                st.backfill_done = False
        cp.from_slot, cp.since_ts = new.from_slot, new.since_ts

    # -- checkpointing ------------------------------------------------------------------------------
    def mark_dirty(self) -> None:
        self._dirty = True

    def save(self) -> None:
        cp = self.cp
        if cp is None:
            return
        if self.backfill is not None and self.backfill.submitted_low is not None:
            prior = cp.submitted_backfill_low
            cp.submitted_backfill_low = (self.backfill.submitted_low if prior is None
                                         else min(prior, self.backfill.submitted_low))
        if self.live is not None and self.live.submitted_high is not None:
            cp.submitted_live_high = max(cp.submitted_live_high or 0, self.live.submitted_high)
        if self.walker is not None and self.walker.submitted_high is not None:
            cp.submitted_live_high = max(cp.submitted_live_high or 0, self.walker.submitted_high)
        if self.store is not None:
            self.store.save(cp)
        self._dirty = False

    async def _saver(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.s.checkpoint_interval)
            if self._dirty:
                self.save()

    # -- running ------------------------------------------------------------------------------------
    def _build(self) -> None:
        assert self.cp is not None
        self.backfill = Backfill(self.rpc, self.processor, self.cp, self.s.addresses, self.s.lower,
                                 self.s.backfill, self.stats, self.stop, on_commit=self.mark_dirty,
                                 replay_above=self._prior_submitted_low, chunk_runner=self.s.chunk_runner)
        if self.s.follow_live:
            self.live = LiveTail(self.rpc, self.processor, self.cp, self.s.addresses, self.s.live, self.stats,
                                 self.stop, on_commit=self.mark_dirty, replay_below=self._prior_live_high,
                                 pending_log=PendingLog(self.cp, self.save))

    async def run(self, stop: asyncio.Event | None = None, *, until_caught_up: bool = False,
                  require_final: bool = True) -> None:
        """Follow the chain until `stop` is set (or, with until_caught_up, until the tip is processed).

        Raises the first fatal error (after saving the checkpoint, which never passes unfinished work).
        """
        if self.cp is None:
            await self.prepare()
        if self.s.mode == "blocks":
            await self._run_blocks(stop, until_caught_up)
            return
        self._build()
        assert self.backfill is not None
        relay = asyncio.create_task(_relay(stop, self.stop)) if stop is not None else None
        saver = asyncio.create_task(self._saver())
        live_task = asyncio.create_task(self.live.run()) if self.live is not None else None
        error: BaseException | None = None
        try:
            await self.backfill.run()
            if until_caught_up:
                if self.live is not None and not self.stop.is_set():
                    await self._wait_live(live_task, require_final)
                self.stop.set()
            if live_task is not None:
                await live_task
        except Stopped:
            pass
        except BaseException as exc:
            error = exc
            self.stop.set()
        finally:
            self.stop.set()
            if live_task is not None and not live_task.done():
                with contextlib.suppress(BaseException):
                    await live_task
            if relay is not None:
                relay.cancel()
            saver.cancel()
            with contextlib.suppress(BaseException):
                await saver
            self.save()
            log.info("follower_stopped", checkpoint_low=self.cp.backfill_low_slot if self.cp else None,
                     live_slot=self.cp.live_slot if self.cp else None)
        if error is not None:
            raise error
        if live_task is not None and live_task.done() and not live_task.cancelled() and live_task.exception():
            raise live_task.exception()  # type: ignore[misc]

    async def _wait_live(self, live_task: asyncio.Task | None, require_final: bool) -> None:
        assert self.live is not None
        waiter = asyncio.create_task(self.live.wait_caught_up(require_final))
        watch = {waiter} | ({live_task} if live_task is not None else set())
        done, _ = await asyncio.wait(watch, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            waiter.result()
        else:
            waiter.cancel()

    async def _run_blocks(self, stop: asyncio.Event | None, until_caught_up: bool) -> None:
        assert self.cp is not None
        lower = LowerBound(self.cp.from_slot, self.cp.since_ts)
        self.walker = BlockWalker(self.rpc, self.processor, self.cp, TxFilter(self.s.addresses), lower,
                                  self.s.blocks, self.stats, self.stop, on_commit=self.mark_dirty,
                                  follow=self.s.follow_live and not until_caught_up,
                                  replay_below=self._prior_live_high,
                                  pending_log=PendingLog(self.cp, self.save))
        self.backfill = None
        relay = asyncio.create_task(_relay(stop, self.stop)) if stop is not None else None
        saver = asyncio.create_task(self._saver())
        try:
            await self.walker.run()
        finally:
            self.stop.set()
            if relay is not None:
                relay.cancel()
            saver.cancel()
            with contextlib.suppress(BaseException):
                await saver
            self.save()
            log.info("follower_stopped", mode="blocks", block_slot=self.cp.block_slot,
                     skipped_slots=self.walker.skipped_slots)

    async def wait_caught_up(self, require_final: bool = True) -> None:
        """While run() follows the chain: return once everything up to the tip of now is published
        (and finalized or retracted, with require_final)."""
        while self.live is None and self.walker is None:
            await asyncio.sleep(0.02)
        if self.walker is not None:
            await self.walker.wait_caught_up(require_final)
        else:
            assert self.live is not None
            await self.live.wait_caught_up(require_final)

    async def run_until_caught_up(self, require_final: bool = True) -> None:
        await self.run(until_caught_up=True, require_final=require_final)


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()
