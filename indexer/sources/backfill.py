"""Backfill: every watched address's finalized history from the seam down to the lower bound.

How the addresses are combined (WHY windows): getSignaturesForAddress can only page backwards, each
address at its own density, and one transaction often touches several watched addresses. The backfill
therefore walks all addresses in lock-step by slot: a window is every listed signature with a slot
above `low`, where `low` is the highest "oldest slot listed so far" among the addresses still paging.
Every address has then listed everything above `low`, so
- a transaction seen by several addresses lands in the same window (it has one slot), and dedup needs
  memory for one window only;
- when a window and all windows before it are acknowledged by Kafka, every transaction with slot > low
  is done, which is exactly what the checkpoint records (per address: resume `before` its oldest item).
Windows are fetched and published concurrently (bounded), and committed strictly in order.
Everything here is at or below the finalized seam, so events are published as `finalized`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from indexer.checkpoint import Checkpoint, SigPos
from indexer.rpc import RpcClient, RpcError
from indexer.sources.common import AddressPager, SourceError, Stopped, patient
from indexer.sources.types import FetchedTx, LowerBound, Processor, SigInfo, SourceStats

log = structlog.get_logger("indexer.sources.backfill")


@dataclass
class BackfillSettings:
    page_limit: int = 1000           # getSignaturesForAddress limit (1000 is the RPC maximum)
    fetch_batch: int = 100           # getTransaction calls per JSON-RPC batch
    fetch_concurrency: int = 8       # batches in flight
    windows_in_flight: int = 8       # windows listed ahead of the oldest unacknowledged one
    missing_retries: int = 8         # a listed transaction the node does not return (yet)
    encoding: str = "base64"


@dataclass
class Window:
    seq: int
    low: int                                            # every signature with slot > low is in this
    sigs: list[SigInfo]                                 # or an earlier window
    oldest: dict[str, SigInfo] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)   # addresses whose history ended with this window
    submitted: bool = False


@dataclass
class BackfillProgress:
    """For progress bars: how far down from the seam the committed position is."""

    seam_slot: int = 0
    seam_time: int | None = None
    target_slot: int | None = None
    target_time: int | None = None
    low_slot: int | None = None
    low_time: int | None = None
    txs: int = 0
    started: float = field(default_factory=time.monotonic)
    done: bool = False

    def fraction(self) -> float | None:
        if self.done:
            return 1.0
        if self.low_slot is None:
            return 0.0
        if self.target_slot is not None and self.seam_slot > self.target_slot:
            return min(1.0, max(0.0, (self.seam_slot - self.low_slot) / (self.seam_slot - self.target_slot)))
        if self.target_time is not None and self.seam_time and self.low_time and self.seam_time > self.target_time:
            return min(1.0, max(0.0, (self.seam_time - self.low_time) / (self.seam_time - self.target_time)))
        return None


class Backfill:
    """Runs the backfill described in the module docstring, updating `checkpoint` as windows commit."""

    def __init__(self, rpc: RpcClient, processor: Processor, checkpoint: Checkpoint, addresses: list[str],
                 lower: LowerBound, settings: BackfillSettings, stats: SourceStats,
                 stop: asyncio.Event, on_commit: Callable[[], None] | None = None,
                 replay_above: int | None = None,
                 chunk_runner: Callable[[list[SigInfo]], Awaitable[None]] | None = None) -> None:
        self.rpc = rpc
        self.processor = processor
        self.cp = checkpoint
        self.addresses = addresses
        self.lower = lower
        self.s = settings
        self.stats = stats
        self.stop = stop
        self.on_commit = on_commit
        self.replay_above = replay_above        # slots above this may have been sent before a crash
        self.chunk_runner = chunk_runner        # None: fetch, decode and publish in this process
        self.progress = BackfillProgress(seam_slot=checkpoint.seam_slot or 0, target_slot=lower.from_slot,
                                         target_time=lower.since_ts)
        self.submitted_low: int | None = None
        self._fetch_sem = asyncio.Semaphore(settings.fetch_concurrency)

    # -- listing ------------------------------------------------------------------------------------
    def _pagers(self) -> dict[str, AddressPager]:
        pagers = {}
        for addr in self.addresses:
            st = self.cp.address(addr)
            if st.backfill_done:
                continue
            first = None
            if st.before is None and st.seam is not None:
                first = SigInfo(st.seam.sig or "", st.seam.slot, st.seam.block_time)
            pager = AddressPager(self.rpc, addr, first=first,
                                 before=st.before.sig if st.before else None, lower=self.lower,
                                 limit=self.s.page_limit, stats=self.stats, stop=self.stop)
            if st.seam is None:
                pager.exhausted = True  # no history at or below the seam
            pagers[addr] = pager
        return pagers

    async def windows(self) -> AsyncIterator[Window]:
        pagers = self._pagers()
        buffers: dict[str, deque[SigInfo]] = {a: deque() for a in pagers}
        seq = 0
        floor = self.lower.from_slot - 1 if self.lower.from_slot is not None else -1
        while not self.stop.is_set():
            await asyncio.gather(*(self._refill(pagers[a], buffers[a]) for a in pagers))
            live = [a for a in pagers if buffers[a] or not pagers[a].exhausted]
            if not live:
                if pagers:  # addresses that ended without any item still need their `done` committed
                    yield Window(seq, floor, [], finished=list(pagers))
                return
            paging = [buffers[a][-1].slot for a in pagers if not pagers[a].exhausted and buffers[a]]
            low = max(paging) if paging else floor
            sigs: dict[str, SigInfo] = {}
            window = Window(seq, low, [])
            for addr in list(pagers):
                buf = buffers[addr]
                while buf and buf[0].slot > low:
                    info = buf.popleft()
                    window.oldest[addr] = info
                    if info.signature in sigs:
                        self.stats.dedup_hits["backfill"] += 1
                    else:
                        sigs[info.signature] = info
                if not buf and pagers[addr].exhausted:
                    window.finished.append(addr)
                    del pagers[addr]
            window.sigs = list(sigs.values())
            seq += 1
            yield window

    @staticmethod
    async def _refill(pager: AddressPager, buf: deque[SigInfo]) -> None:
        # Keep at least two distinct slots buffered, so the window boundary always makes progress.
        while not pager.exhausted and (not buf or buf[0].slot == buf[-1].slot):
            buf.extend(await pager.next_page())

    # -- fetching and publishing --------------------------------------------------------------------
    async def _fetch_chunk(self, chunk: list[SigInfo]) -> asyncio.Future:
        async with self._fetch_sem:
            results = await fetch_finalized(self.rpc, chunk, encoding=self.s.encoding, stats=self.stats,
                                            stop=self.stop, missing_retries=self.s.missing_retries)
        txs = fetched_batch(chunk, results, "backfill")
        done = self.processor.process_batch(txs)
        if self.replay_above is not None:
            self.stats.replayed += sum(1 for tx in txs if tx.slot > self.replay_above)
        self.stats.txs["backfill"] += len(txs)
        self.progress.txs += len(txs)
        return done

    async def _remote_chunk(self, chunk: list[SigInfo]) -> None:
        """The chunk is fetched, decoded and published by `chunk_runner` (e.g. a worker process)."""
        assert self.chunk_runner is not None
        async with self._fetch_sem:
            await self.chunk_runner(chunk)
        for info in chunk:
            if self.replay_above is not None and info.slot > self.replay_above:
                self.stats.replayed += 1
        self.stats.txs["backfill"] += len(chunk)
        self.progress.txs += len(chunk)

    async def _run_window(self, window: Window) -> Window:
        chunks = [window.sigs[i:i + self.s.fetch_batch] for i in range(0, len(window.sigs), self.s.fetch_batch)]
        if self.chunk_runner is not None:
            await asyncio.gather(*(self._remote_chunk(c) for c in chunks))
            window.submitted = True
            return window
        futures = await asyncio.gather(*(self._fetch_chunk(c) for c in chunks))
        window.submitted = True
        if futures:
            await asyncio.gather(*futures)
        return window

    # -- committing ---------------------------------------------------------------------------------
    def _commit(self, window: Window) -> None:
        for addr, info in window.oldest.items():
            self.cp.address(addr).before = SigPos(info.signature, info.slot, info.block_time)
        for addr in window.finished:
            self.cp.address(addr).backfill_done = True
        self.cp.backfill_low_slot = window.low
        self.stats.backfill_low_slot = window.low
        self.stats.windows += 1
        p = self.progress
        p.low_slot = window.low
        if window.sigs:
            times = [s.block_time for s in window.sigs if s.block_time is not None]
            if times:
                p.low_time = min(times)
        if self.on_commit is not None:
            self.on_commit()

    async def run(self) -> bool:
        """Run until the history is exhausted (True) or stop is requested (False)."""
        if self.cp.backfill_done:
            self.progress.done = True
            return True
        in_flight: deque[asyncio.Task[Window]] = deque()
        try:
            async for window in self.windows():
                self.submitted_low = window.low if self.submitted_low is None else min(self.submitted_low,
                                                                                        window.low)
                in_flight.append(asyncio.create_task(self._run_window(window)))
                while len(in_flight) >= self.s.windows_in_flight or (in_flight and in_flight[0].done()):
                    self._commit(await in_flight.popleft())
        except Stopped:
            pass
        except BaseException:
            for task in in_flight:
                task.cancel()
            raise
        await self._drain(in_flight)
        done = self.cp.backfill_done
        self.progress.done = done
        if done:
            log.info("backfill_done", txs=self.progress.txs, low_slot=self.cp.backfill_low_slot)
        return done

    async def _drain(self, in_flight: deque[asyncio.Task[Window]]) -> None:
        """Let windows already in flight finish and commit them in order, so no work is thrown away."""
        while in_flight:
            task = in_flight.popleft()
            try:
                self._commit(await task)
            except Stopped:
                for t in in_flight:
                    t.cancel()
                return
            except BaseException:
                for t in in_flight:
                    t.cancel()
                raise


def fetched_batch(chunk: list[SigInfo], results: list[dict], source: str) -> list[FetchedTx]:
    """getTransaction results of listed, finalized signatures -> FetchedTx (slot and time from the result)."""
    return [FetchedTx(info.signature, int(res.get("slot", info.slot)), res.get("blockTime", info.block_time),
                      "finalized", res, source) for info, res in zip(chunk, results, strict=True)]


async def fetch_finalized(rpc: RpcClient, chunk: list[SigInfo], *, encoding: str, stats: SourceStats,
                          stop: asyncio.Event | None, missing_retries: int = 8) -> list[dict]:
    """getTransaction for listed, finalized signatures (one JSON-RPC batch), in order.

    A signature the node does not return is asked again a few times, then the whole thing fails
    (SourceError): a finalized, listed transaction is never skipped.
    """
    sigs = [i.signature for i in chunk]
    results = await patient(lambda: rpc.get_transactions(sigs, "confirmed", encoding),
                            what="getTransaction:backfill", stats=stats, stop=stop)
    out = []
    for info, res in zip(chunk, results, strict=True):
        if res is None or isinstance(res, RpcError):
            res = await _fetch_missing(rpc, info, res, encoding, stop, missing_retries)
        out.append(res)
    return out


async def _fetch_missing(rpc: RpcClient, info: SigInfo, first: object, encoding: str,
                         stop: asyncio.Event | None, retries: int) -> dict:
    last = first
    for attempt in range(retries):
        await asyncio.sleep(min(2.0, 0.05 * 2 ** attempt))
        if stop is not None and stop.is_set():
            raise Stopped("backfill")
        try:
            res = await rpc.get_transaction(info.signature, "confirmed", encoding)
        except RpcError as exc:
            last = exc
            continue
        if res is not None:
            return res
    raise SourceError(f"transaction {info.signature} (slot {info.slot}) is listed as finalized but "
                      f"getTransaction keeps answering {last!r}; refusing to skip it")
