"""Block walker: every block from the lower bound on, forward, finalized then confirmed.

WHY a second source: getSignaturesForAddress only finds transactions whose account keys contain a
watched address. A plain SPL `Transfer` of RENDER between two holders names neither the mint nor a
watched account (only the two token accounts), so address listening cannot see it; walking blocks
sees every transaction and the classifier keeps the relevant ones. The price is bandwidth (every
block is downloaded), so this mode suits the simulator, a local/archive node, or a paid endpoint.

How it stays gap-free and fork-safe:
- slots are walked in ranges: getBlocks(start, end) lists the blocks of a range at one commitment;
  a listed slot that getBlock then answers with -32007/-32009 is a skipped slot (typed, recorded,
  never retried forever); -32004 is retried by the client;
- ranges at or below the finalized slot are published as finalized; newer ranges at confirmed, and
  their transactions go through the finalizer (promoted, or retracted if the block forks away);
- a confirmed range is committed only after it is listed again at finalized and every finalized
  block in it was processed (a block that appeared on the canonical fork meanwhile is fetched then),
  so the durable position (`Checkpoint.block_slot`: every slot up to it is done and final) never
  passes a block that was not processed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import structlog

from indexer.checkpoint import Checkpoint
from indexer.decode.base58 import b58decode, b58encode
from indexer.rpc import RpcClient, RpcError, SlotSkipped
from indexer.sources.backfill import BackfillProgress
from indexer.sources.common import SourceError, Stopped, chain_tips, patient
from indexer.sources.finalizer import Finalizer, PendingLog
from indexer.sources.types import FetchedTx, LowerBound, Prepared, Processor, SourceStats

log = structlog.get_logger("indexer.sources.blocks")


@dataclass
class BlockSettings:
    range_slots: int = 2_000          # slots per getBlocks range (one window)
    blocks_per_batch: int = 20        # getBlock calls per JSON-RPC batch
    fetch_concurrency: int = 4        # batches in flight
    windows_in_flight: int = 6
    poll_interval: float = 0.4        # at the tip: how often to look for new confirmed blocks
    encoding: str = "base64"


class TxFilter:
    """Cheap test on the raw transaction: could it concern a watched address or mint?

    Watched pubkeys are searched as raw 32-byte strings in the wire message (a C-level substring search),
    loaded (lookup-table) addresses and token-balance mints as strings. Over-inclusion only costs a
    decode; the classifier makes the real decision.
    """

    def __init__(self, addresses: Iterable[str], mints: Iterable[str] = ()) -> None:
        self.addresses = frozenset(addresses) | frozenset(mints)
        self._raw = [b58decode(a) for a in self.addresses]

    def relevant(self, wire: bytes, meta: dict | None) -> bool:
        for raw in self._raw:
            if raw in wire:
                return True
        if not meta:
            return False
        loaded = meta.get("loadedAddresses") or {}
        for key in ("writable", "readonly"):
            for addr in loaded.get(key) or ():
                if addr in self.addresses:
                    return True
        for key in ("preTokenBalances", "postTokenBalances"):
            for bal in meta.get(key) or ():
                if bal.get("mint") in self.addresses:
                    return True
        return False


def first_signature(wire: bytes) -> str:
    """The transaction id: the first signature (after the compact-u16 count) of the wire bytes."""
    count, offset = 0, 0
    for shift in (0, 7, 14):
        byte = wire[offset]
        offset += 1
        count |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    if count < 1 or len(wire) < offset + 64:
        raise ValueError("transaction has no signature")
    return b58encode(wire[offset:offset + 64])


def block_transactions(block: dict, slot: int, flt: TxFilter) -> Iterator[tuple[str, dict]]:
    """(signature, getTransaction-shaped result) for the relevant transactions of a getBlock result."""
    block_time = block.get("blockTime")
    for item in block.get("transactions") or ():
        tx = item.get("transaction")
        meta = item.get("meta")
        if not (isinstance(tx, list) and tx and isinstance(tx[0], str)):
            raise SourceError(f"block {slot}: transactions are not base64-encoded")
        try:
            wire = base64.b64decode(tx[0])
            signature = first_signature(wire)
        except (binascii.Error, ValueError, IndexError) as exc:
            raise SourceError(f"block {slot}: undecodable transaction: {exc}") from exc
        if flt.relevant(wire, meta):
            yield signature, {"slot": slot, "blockTime": block_time, "transaction": tx, "meta": meta,
                              "version": item.get("version", "legacy")}


@dataclass
class _Range:
    start: int
    end: int
    commitment: str
    slots: list[int]
    processed: set[int] = field(default_factory=set)


class BlockWalker:
    def __init__(self, rpc: RpcClient, processor: Processor, checkpoint: Checkpoint, flt: TxFilter,
                 lower: LowerBound, settings: BlockSettings, stats: SourceStats, stop: asyncio.Event,
                 on_commit: Callable[[], None] | None = None, follow: bool = True,
                 replay_below: int | None = None, pending_log: PendingLog | None = None) -> None:
        self.rpc = rpc
        self.processor = processor
        self.cp = checkpoint
        self.flt = flt
        self.lower = lower
        self.s = settings
        self.stats = stats
        self.stop = stop
        self.on_commit = on_commit
        self.follow = follow
        self.replay_below = replay_below      # slots up to this may have been sent before a crash
        self.finalizer = Finalizer(rpc, processor, stats, stop, settings.encoding, pending_log)
        self.progress = BackfillProgress()
        self.skipped_slots = 0
        self._sem = asyncio.Semaphore(settings.fetch_concurrency)
        self._caught_up = asyncio.Event()
        self.submitted_high: int | None = None
        self.acked_through = -1

    # -- start ---------------------------------------------------------------------------------------
    async def start_slot(self) -> int:
        if self.cp.block_slot is not None:
            return self.cp.block_slot + 1
        if self.lower.from_slot is not None:
            first = await patient(lambda: self.rpc.call("getFirstAvailableBlock", []),
                                  what="getFirstAvailableBlock", stats=self.stats, stop=self.stop)
            return max(self.lower.from_slot, int(first))  # nothing to walk below the node's history
        if self.lower.since_ts is not None:
            return await slot_at_time(self.rpc, self.lower.since_ts, self.stats, self.stop)
        return await patient(lambda: self.rpc.get_slot("finalized"), what="getSlot", stats=self.stats,
                             stop=self.stop)

    # -- fetching --------------------------------------------------------------------------------------
    async def _blocks(self, slots: list[int], commitment: str) -> list[tuple[int, object]]:
        """(slot, block or SlotSkipped) for every slot; a block the client gave up on is asked again.

        WHY: a listed block can answer -32004 "not available" (or 429s, resets ...) longer than the
        client's own retries last; like any RPC outage that is ridden out with patient() backoff (counted
        in source_retries), not turned into a listener failure. Blocks already received are kept."""
        cfg = {"encoding": self.s.encoding, "transactionDetails": "full", "rewards": False,
               "maxSupportedTransactionVersion": 0, "commitment": commitment}
        got: dict[int, object] = {}

        async def fetch_missing() -> None:
            todo = [s for s in slots if s not in got]
            results = await self.rpc.call_many([("getBlock", [s, cfg]) for s in todo])
            failed = None
            for slot, res in zip(todo, results, strict=True):
                if isinstance(res, RpcError) and not isinstance(res, SlotSkipped):
                    failed = failed or res
                else:
                    got[slot] = res
            if failed is not None:
                raise failed

        async with self._sem:
            await patient(fetch_missing, what="getBlock", stats=self.stats, stop=self.stop)
        return [(s, got[s]) for s in slots]

    async def _run_range(self, rng: _Range) -> _Range:
        """Fetch and publish every block of the range; wait for acknowledgement, then finality."""
        waits: list[asyncio.Future | asyncio.Task] = []
        await self._fetch_into(rng, rng.slots, rng.commitment, waits)
        acks = [w for w in waits if isinstance(w, asyncio.Future) and not isinstance(w, asyncio.Task)]
        if acks:
            await asyncio.gather(*acks)
        self.acked_through = max(self.acked_through, rng.end)
        if waits:
            await asyncio.gather(*waits)
        if rng.commitment == "confirmed":
            await self._verify_final(rng)
        return rng

    async def _fetch_into(self, rng: _Range, slots: list[int], commitment: str, waits: list) -> None:
        batches = [slots[i:i + self.s.blocks_per_batch] for i in range(0, len(slots), self.s.blocks_per_batch)]
        for fetched in await asyncio.gather(*(self._blocks(b, commitment) for b in batches)):
            for slot, res in fetched:
                rng.processed.add(slot)
                if isinstance(res, SlotSkipped):
                    self.skipped_slots += 1   # listed, then skipped (a fork abandoned it): nothing there
                    continue
                if isinstance(res, RpcError) or res is None:
                    raise SourceError(f"getBlock {slot} failed: {res!r}")
                self._publish_block(res, slot, commitment, waits)

    def _publish_block(self, block: dict, slot: int, commitment: str, waits: list) -> None:
        finalized_before = self.finalizer.finalized_slot
        for signature, result in block_transactions(block, slot, self.flt):
            final = commitment == "finalized" or slot <= finalized_before
            if self.replay_below is not None and slot <= self.replay_below:
                self.stats.replayed += 1
            prepared = self.processor.prepare(FetchedTx(signature, slot, block.get("blockTime"),
                                                        "finalized" if final else "confirmed", result, "blocks"))
            self.stats.txs["blocks"] += 1
            self.progress.txs += 1
            self.stats.newest_processed_slot = max(self.stats.newest_processed_slot, slot)
            self.submitted_high = slot if self.submitted_high is None else max(self.submitted_high, slot)
            if final:
                waits.append(self.processor.submit(prepared).done)
            else:
                waits.append(asyncio.create_task(self._publish_confirmed(prepared)))

    async def _publish_confirmed(self, prepared: Prepared) -> str:
        delivery = await self.finalizer.publish_confirmed(prepared)
        await delivery.done
        tx = prepared.tx
        return await self.finalizer.resolve(tx.signature, tx.slot, tx.block_time, delivery)

    async def _verify_final(self, rng: _Range) -> None:
        """A confirmed range: list it again at finalized; fetch any finalized block not processed."""
        while self.finalizer.finalized_slot < rng.end and not self.stop.is_set():
            await asyncio.sleep(self.s.poll_interval)
        if self.stop.is_set():
            raise Stopped("verify")
        final = await patient(lambda: self.rpc.call("getBlocks", [rng.start, rng.end, {"commitment": "finalized"}]),
                              what="getBlocks", stats=self.stats, stop=self.stop)
        missed = [s for s in final if s not in rng.processed]
        if missed:
            log.warning("blocks_missed_at_confirmed", slots=missed[:20], count=len(missed))
            waits: list = []
            await self._fetch_into(rng, missed, "finalized", waits)
            if waits:
                await asyncio.gather(*waits)

    # -- walking ---------------------------------------------------------------------------------------
    async def _tips(self) -> tuple[int, int]:
        return await chain_tips(self.rpc, stats=self.stats, stop=self.stop)

    async def _ranges(self, start: int):
        """Yield the next ranges to process, forever (or until caught up when not following)."""
        nxt = start
        while not self.stop.is_set():
            finalized, confirmed = await self._tips()
            self.stats.tip_slot = max(self.stats.tip_slot, confirmed)
            if nxt <= finalized:
                end, commitment = min(finalized, nxt + self.s.range_slots - 1), "finalized"
            elif nxt <= confirmed and self.follow:
                end, commitment = min(confirmed, nxt + self.s.range_slots - 1), "confirmed"
            else:
                self._caught_up.set()
                if not self.follow:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=self.s.poll_interval)
                continue
            listing = functools.partial(self.rpc.call, "getBlocks", [nxt, end, {"commitment": commitment}])
            slots = await patient(listing, what="getBlocks", stats=self.stats, stop=self.stop)
            yield _Range(nxt, end, commitment, [int(s) for s in slots])
            nxt = end + 1

    def _commit(self, rng: _Range) -> None:
        self.cp.block_slot = rng.end
        self.stats.live_slot = rng.end
        self.progress.low_slot = rng.end
        if self.on_commit is not None:
            self.on_commit()

    async def _finalizer_loop(self) -> None:
        while not self.stop.is_set():
            try:
                await self.finalizer.round()
            except Stopped:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.s.poll_interval / 2)

    async def run(self) -> None:
        start = await self.start_slot()
        if self.cp.block_slot is None:
            self.cp.block_slot = start - 1
        await self.finalizer.round()
        self.finalizer.resume()
        self.progress.seam_slot = self.finalizer.finalized_slot
        self.progress.target_slot = start
        finalizer = asyncio.create_task(self._finalizer_loop())
        # Ranges are processed concurrently (bounded) and committed strictly in order by their own task,
        # so a finished range is committed even while the walk waits at the tip for new blocks.
        queue: asyncio.Queue[asyncio.Task[_Range] | None] = asyncio.Queue(maxsize=self.s.windows_in_flight)
        started: list[asyncio.Task[_Range]] = []

        async def committer() -> None:
            while (task := await queue.get()) is not None:
                self._commit(await task)

        commit_task = asyncio.create_task(committer())
        try:
            async for rng in self._ranges(start):
                task = asyncio.create_task(self._run_range(rng))
                started.append(task)
                put = asyncio.create_task(queue.put(task))
                await asyncio.wait({put, commit_task}, return_when=asyncio.FIRST_COMPLETED)
                if commit_task.done():
                    put.cancel()
                    commit_task.result()  # a range failed: raise its error
                    break
                started = [t for t in started if not t.done()]
            await queue.put(None)
            if self.stop.is_set():
                # stopping: ranges that are only waiting for finality are abandoned (the next start
                # resumes after the last committed range: duplicates at worst, never a gap)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(commit_task), timeout=5.0)
            else:
                await commit_task
        except Stopped:
            pass
        finally:
            for task in started:
                task.cancel()
            commit_task.cancel()
            await asyncio.gather(commit_task, *started, return_exceptions=True)
            finalizer.cancel()
            await asyncio.gather(finalizer, return_exceptions=True)

    async def wait_caught_up(self, require_final: bool = True, poll: float = 0.05) -> None:
        """Return once every block up to the confirmed tip of now is acknowledged (and final)."""
        _, target = await self._tips()
        while not self.stop.is_set():
            done = (self.cp.block_slot or -1) if require_final else self.acked_through
            if done >= target:
                return
            await asyncio.sleep(poll)
        raise Stopped("caught-up wait")


async def slot_at_time(rpc: RpcClient, ts: int, stats: SourceStats, stop: asyncio.Event | None) -> int:
    """The walk's start for a date: the lowest slot from which every block has blockTime >= ts
    (binary search over getBlocksWithLimit + getBlockTime; block times are monotonic)."""
    lo = int(await patient(lambda: rpc.call("getFirstAvailableBlock", []), what="getFirstAvailableBlock",
                           stats=stats, stop=stop))
    hi = int(await patient(lambda: rpc.get_slot("finalized"), what="getSlot", stats=stats, stop=stop))

    async def time_at(slot: int) -> tuple[int, int | None]:
        """(block slot at or after `slot`, its blockTime)."""
        blocks = await patient(lambda: rpc.call("getBlocksWithLimit", [slot, 1, {"commitment": "finalized"}]),
                               what="getBlocksWithLimit", stats=stats, stop=stop)
        if not blocks:
            return hi + 1, None
        block_slot = int(blocks[0])
        try:
            return block_slot, await rpc.call("getBlockTime", [block_slot])
        except SlotSkipped:
            return block_slot, None

    started = time.monotonic()
    while lo < hi:
        mid = (lo + hi) // 2
        block_slot, block_time = await time_at(mid)
        if block_time is None or block_time >= ts:
            hi = mid
        else:
            lo = block_slot + 1
    log.info("slot_for_time", ts=ts, slot=lo, seconds=round(time.monotonic() - started, 2))
    return lo
