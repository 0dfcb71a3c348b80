"""Live tail: new transactions of the watched addresses, at `confirmed`, with no gap ever.

Three inputs, one rule: only the reconciliation sweep moves the durable position.
- Websocket `logsSubscribe` (mentions) notifications start a transaction's processing at once (low
  latency), `slotSubscribe` tells the tip; both are hints, assumed lossy.
- The sweep pages getSignaturesForAddress (confirmed) newest-first `until` the last listed signature of
  each address, every `sweep_interval`, immediately after a websocket reconnect, and on demand. What it
  lists is appended, oldest first, to the address's ordered queue; a job started by a hint is reused.
- An address's durable watermark moves over the head of its queue only when those jobs are *finished*:
  acknowledged by Kafka and finalized (or retracted) by the finalizer, so a checkpointed signature can
  never be one that forks away, and a restart re-sweeps from it without a gap.
The seam: the live tail covers slots > checkpoint.seam_slot, the backfill slots <= it.
A transaction touching several addresses is one job (a registry keyed by signature, evicted some
`dedup_slots` below the finalized slot, so memory stays bounded for months).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from indexer.checkpoint import Checkpoint, SigPos
from indexer.rpc import RpcClient, RpcError, Subscription, WsSubscriber
from indexer.sources.common import SourceError, Stopped, list_page, patient
from indexer.sources.finalizer import Finalizer, PendingLog, raise_if_pruned
from indexer.sources.types import Delivery, FetchedTx, Processor, SigInfo, SourceStats, sig_infos

log = structlog.get_logger("indexer.sources.live")


@dataclass
class LiveSettings:
    page_limit: int = 1000
    sweep_interval: float = 1.0       # seconds between reconciliation sweeps (also after ws reconnects)
    finalize_interval: float = 0.4    # seconds between finalizer rounds
    fetch_batch: int = 100
    fetch_batches_in_flight: int = 8  # getTransaction batches outstanding at once (bounds parsed results held)
    dedup_slots: int = 2_000          # keep finished signatures this many slots below finalized
    ws_url: str | None = None         # None: sweeps only
    ws_stall_timeout: float = 10.0
    encoding: str = "base64"
    missing_fast_retries: int = 6     # a listed/hinted tx the node does not return yet


class Flag:
    """A set-once flag with asyncio.Event's set()/is_set() (nobody awaits a job's end).

    WHY not asyncio.Event: an Event carries a waiters deque (~700 bytes) and a finished job stays in
    the dedup registry for `dedup_slots` slots - tens of thousands of jobs on a busy chain."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class Job:
    """One live transaction, from listing (or hint) to finalization.

    A finished job is kept only as a dedup entry (signature, slot, outcome): its task and delivery
    receipt are dropped when it finishes (see LiveTail._finish)."""

    __slots__ = ("signature", "slot", "block_time", "status", "acked", "outcome", "finished", "task",
                 "delivery", "seen_at")

    def __init__(self, info: SigInfo, finished: asyncio.Event | Flag | None = None) -> None:
        self.signature = info.signature
        self.slot = info.slot
        self.block_time = info.block_time
        self.status = info.status
        self.acked = False
        self.outcome = ""               # finalized | retracted | vanished | moved
        self.finished = finished if finished is not None else Flag()
        self.task: asyncio.Task | None = None
        self.delivery: Delivery | None = None
        self.seen_at = time.monotonic()

    @property
    def done(self) -> bool:
        return self.finished.is_set()


class BatchFetcher:
    """Coalesces concurrent getTransaction requests into JSON-RPC batches (no added wait).

    At most `in_flight` batches are outstanding; the rest wait in the queue as (signature, future).
    WHY: a sweep after a reconnect or a restart can list thousands of signatures at once; sending
    every batch at once held every parsed result (~10 KiB each) until the CPU got to it, a transient
    of hundreds of MiB that the process's RSS keeps afterwards. Requests that wait meanwhile join
    fuller batches."""

    def __init__(self, rpc: RpcClient, batch: int, encoding: str, stats: SourceStats,
                 stop: asyncio.Event, in_flight: int = 8) -> None:
        self.rpc = rpc
        self.batch = batch
        self.encoding = encoding
        self.stats = stats
        self.stop = stop
        self._queue: asyncio.Queue[tuple[str, str, asyncio.Future]] = asyncio.Queue()
        self._slots = asyncio.Semaphore(max(1, in_flight))

    async def get(self, signature: str, commitment: str = "confirmed") -> object:
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((signature, commitment, fut))
        return await fut

    async def run(self) -> None:
        while True:
            first = await self._queue.get()
            await self._slots.acquire()
            items = [first]
            while len(items) < self.batch and not self._queue.empty():
                items.append(self._queue.get_nowait())
            asyncio.create_task(self._send(items))

    async def _send(self, items: list[tuple[str, str, asyncio.Future]]) -> None:
        try:
            calls = [("getTransaction", self.rpc.transaction_params(sig, c, self.encoding)) for sig, c, _ in items]
            try:
                results = await patient(lambda: self.rpc.call_many(calls), what="getTransaction:live",
                                        stats=self.stats, stop=self.stop)
            except BaseException as exc:  # Stopped or cancelled: wake the waiters
                for _, _, fut in items:
                    if not fut.done():
                        fut.set_exception(exc if isinstance(exc, Exception) else Stopped("fetch"))
                return
            for (_, _, fut), res in zip(items, results, strict=True):
                if not fut.done():
                    fut.set_result(res)
        finally:
            self._slots.release()


class LiveTail:
    def __init__(self, rpc: RpcClient, processor: Processor, checkpoint: Checkpoint, addresses: list[str],
                 settings: LiveSettings, stats: SourceStats, stop: asyncio.Event,
                 on_commit: Callable[[], None] | None = None, replay_below: int | None = None,
                 pending_log: PendingLog | None = None) -> None:
        if checkpoint.seam_slot is None:
            raise ValueError("the live tail needs the seam slot")
        self.rpc = rpc
        self.processor = processor
        self.cp = checkpoint
        self.addresses = addresses
        self.s = settings
        self.stats = stats
        self.stop = stop
        self.on_commit = on_commit
        self.replay_below = replay_below
        self.seam_slot: int = checkpoint.seam_slot
        self.jobs: dict[str, Job] = {}
        self.queues: dict[str, deque[Job]] = {a: deque() for a in addresses}
        self.queued: dict[str, set[str]] = {a: set() for a in addresses}
        self.cursors: dict[str, SigPos] = {a: self._start_cursor(a) for a in addresses}
        self.sweep_tip: dict[str, int] = {a: self.seam_slot for a in addresses}
        self.submitted_high: int | None = None
        self.fetcher = BatchFetcher(rpc, settings.fetch_batch, settings.encoding, stats, stop,
                                    settings.fetch_batches_in_flight)
        self.finalizer = Finalizer(rpc, processor, stats, stop, settings.encoding, pending_log)
        self._sweep_now = asyncio.Event()
        self._swept = asyncio.Condition()
        self._sweep_count = 0
        self._sweeping = False
        self._error: BaseException | None = None
        self._changed = asyncio.Event()

    def _start_cursor(self, addr: str) -> SigPos:
        st = self.cp.address(addr)
        if st.live is not None:
            return SigPos(st.live.sig, st.live.slot, st.live.block_time)
        if st.seam is not None:
            return SigPos(st.seam.sig, st.seam.slot, st.seam.block_time)
        return SigPos(None, self.seam_slot)

    # -- jobs ---------------------------------------------------------------------------------------
    def _job(self, info: SigInfo) -> Job:
        job = self.jobs.get(info.signature)
        # A done job is reused, except a retracted one listed again in another slot (re-included) and a
        # vanished one listed again at all: being listed says the node has it after all (a node behind
        # a load balancer that had not seen it yet, or a status cache lag), and reusing the vanished
        # job would lose the transaction for good (issue 9).
        if job is not None and not (job.done and (job.outcome == "vanished" or (
                job.outcome == "retracted" and job.slot != info.slot))):
            self.stats.dedup_hits["live"] += 1
            if info.status == "finalized" and job.status != "finalized":
                job.status = "finalized"
            return job
        job = Job(info)
        self.jobs[info.signature] = job
        job.task = asyncio.create_task(self._run_job(job))
        return job

    async def _run_job(self, job: Job) -> None:
        try:
            # Finality known BEFORE the fetch: a block finalized by then cannot be a dead fork, whereas a
            # finalized slot learnt after the fetch says nothing about the copy we fetched.
            finalized_before = self.finalizer.finalized_slot
            result = await self._fetch(job)
            if result is None:
                self._finish(job, "vanished")
                return
            slot = int(result.get("slot", job.slot))
            block_time = result.get("blockTime", job.block_time)
            job.slot, job.block_time = slot, block_time
            final = job.status == "finalized" or slot <= finalized_before
            if self.replay_below is not None and slot <= self.replay_below:
                self.stats.replayed += 1
            prepared = self.processor.prepare(FetchedTx(job.signature, slot, block_time,
                                                        "finalized" if final else "confirmed", result, "live"))
            if final:
                delivery = self.processor.submit(prepared)
            else:
                delivery = await self.finalizer.publish_confirmed(prepared)
            job.delivery = delivery
            # The messages are with the producer now: drop the parsed result and the prepared messages
            # (~50 KiB per transaction) instead of keeping them in this frame until finalization.
            result = prepared = None
            self.stats.txs["live"] += 1
            self.stats.newest_processed_slot = max(self.stats.newest_processed_slot, slot)
            self.submitted_high = slot if self.submitted_high is None else max(self.submitted_high, slot)
            await delivery.done
            job.acked = True
            self.stats.live_ack_lag.append(time.monotonic() - job.seen_at)
            self._changed.set()
            if final:
                self._finish(job, "finalized")
                return
            outcome = await self.finalizer.resolve(job.signature, slot, block_time, delivery)
            self._finish(job, outcome)
        except Stopped:
            return
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a Kafka failure or an impossible chain answer: fail closed
            self._fail(exc)

    def _finish(self, job: Job, outcome: str) -> None:
        job.outcome = outcome
        job.finished.set()
        # From here on the job is only a dedup entry, kept for `dedup_slots` slots: drop the finished
        # task (its coroutine) and the delivery receipt (future + event ids), ~1 KiB per transaction.
        job.task = job.delivery = None
        self._advance()

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
            log.error("live_failed", error=f"{type(exc).__name__}: {exc}")
        self.stop.set()
        self._changed.set()

    async def _fetch(self, job: Job) -> dict | None:
        """The transaction, or None when it no longer exists (forked away before we fetched it)."""
        attempt = 0
        while True:
            res = await self.fetcher.get(job.signature)
            if isinstance(res, dict):
                return res
            attempt += 1
            if attempt >= self.s.missing_fast_retries:
                status = (await patient(lambda: self.rpc.get_signature_statuses([job.signature]),
                                        what="getSignatureStatuses:live", stats=self.stats, stop=self.stop))[0]
                if status is None:
                    await self._not_pruned(job.signature, job.slot)
                    log.info("tx_vanished", signature=job.signature, slot=job.slot)
                    return None
                if attempt > 200:
                    raise SourceError(f"{job.signature} has a status but getTransaction keeps failing: {res!r}")
            delay = min(2.0, 0.02 * 2 ** min(attempt, 7))
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=delay)
                raise Stopped("fetch")
            except TimeoutError:
                pass

    async def _not_pruned(self, signature: str, slot: int) -> None:
        """Raise if `slot` is below the node's first available block.

        WHY: "getTransaction null and no status" means forked away only while the node still holds
        the slot; a node with limited ledger retention (or a status cache that forgot it) answers the
        same for a canonical transaction it purged, and dropping that one would lose its events
        silently (issue 9). Unknowable here, so fail closed: the durable watermark stays before it,
        and a restart against a node that still has the slot (or a backfill) picks it up."""
        await raise_if_pruned(self.rpc, signature, slot, self.stats, self.stop)

    # -- sweeps -------------------------------------------------------------------------------------
    async def sweep_address(self, addr: str, first_page: tuple[SigPos, list[SigInfo]] | None = None,
                            tip_at_start: int | None = None) -> int:
        """List `addr` newest-first down to its cursor and queue what is new; returns how many.

        `first_page` = (cursor, page): the answer to this sweep's first request (before=None,
        until=cursor.sig) when sweep_all already fetched it, with the `tip_at_start` taken before."""
        cur = self.cursors[addr]
        if first_page is not None and first_page[0] is not cur:
            first_page = None            # (listed from another cursor: cannot happen with one sweeper)
        if tip_at_start is None:
            tip_at_start = max(self.stats.tip_slot, self.seam_slot)
        collected: dict[str, SigInfo] = {}
        before: str | None = None
        while True:
            if first_page is not None:
                page, first_page = first_page[1], None
            else:
                page = await list_page(self.rpc, addr, before=before, until=cur.sig, limit=self.s.page_limit,
                                       commitment="confirmed", stats=self.stats, stop=self.stop,
                                       what="getSignaturesForAddress:sweep")
            reached = False
            for info in page:
                if info.signature == cur.sig or info.slot < cur.slot or (cur.sig is None and info.slot <= cur.slot):
                    reached = True
                    break
                collected.setdefault(info.signature, info)
            if reached:
                break
            if len(page) < self.s.page_limit:
                # A short page ends the history only if its `before` anchor still exists: a confirmed
                # anchor that forked away meanwhile makes the node answer [] (Agave), which would
                # silently skip everything older. Then list again from the top.
                if before is not None and not await self._exists(before):
                    log.info("sweep_anchor_vanished", address=addr, anchor=before)
                    before = None
                    continue
                break
            before = page[-1].signature
        # newest first; a restarted listing may have appended older items late, so order by slot
        new = sorted(collected.values(), key=lambda i: -i.slot)
        self.stats.listed["live"] += len(new)
        queue, queued = self.queues[addr], self.queued[addr]
        for info in reversed(new):
            if info.signature in queued:
                continue
            job = self._job(info)
            queue.append(job)
            queued.add(info.signature)
        if new:
            newest = new[0]
            self.cursors[addr] = SigPos(newest.signature, newest.slot, newest.block_time)
        self.sweep_tip[addr] = max(self.sweep_tip[addr], tip_at_start)
        self._advance()
        return len(new)

    async def _first_pages(self) -> dict[str, tuple[SigPos, list[SigInfo]]]:
        """Every address's first sweep page in one JSON-RPC batch: address -> (its cursor, page).

        WHY: a sweep that finds nothing new (every second, for every watched address; during a
        backfill ~500 requests per 18k transactions) was one HTTP round trip per address, and each
        costs far more CPU (client and node) than the call it carries. Same requests as
        sweep_address's first one (before=None, until=cursor), so the listing is unchanged. An
        address whose call failed is left out: sweep_address lists it itself, patiently."""
        if len(self.addresses) < 2:
            return {}
        cursors = [self.cursors[a] for a in self.addresses]
        calls = [("getSignaturesForAddress", self.rpc.signatures_params(
            a, until=cur.sig, limit=self.s.page_limit, commitment="confirmed"))
            for a, cur in zip(self.addresses, cursors, strict=True)]
        try:
            results = await self.rpc.call_many(calls)
        except RpcError:
            return {}
        return {a: (cur, sig_infos(r or [])) for a, cur, r in zip(self.addresses, cursors, results, strict=True)
                if isinstance(r, list | None)}

    async def _exists(self, signature: str) -> bool:
        status = (await patient(lambda: self.rpc.get_signature_statuses([signature]),
                                what="getSignatureStatuses:anchor", stats=self.stats, stop=self.stop))[0]
        return status is not None

    async def sweep_all(self) -> int:
        self._sweeping = True
        try:
            tip_at_start = max(self.stats.tip_slot, self.seam_slot)
            firsts = await self._first_pages()
            counts = await asyncio.gather(*(self.sweep_address(a, firsts.get(a), tip_at_start)
                                            for a in self.addresses))
        finally:
            self._sweeping = False
        self.stats.sweeps += 1
        async with self._swept:
            self._sweep_count += 1
            self._swept.notify_all()
        return sum(counts)

    async def _sweeper(self) -> None:
        while not self.stop.is_set():
            self._sweep_now.clear()
            try:
                await self.sweep_all()
            except Stopped:
                return
            waiter = asyncio.create_task(self._sweep_now.wait())
            stopper = asyncio.create_task(self.stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=self.s.sweep_interval,
                               return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    def request_sweep(self) -> None:
        self._sweep_now.set()

    # -- watermarks -----------------------------------------------------------------------------------
    def _advance(self) -> None:
        moved = False
        for addr, queue in self.queues.items():
            last: Job | None = None
            while queue and queue[0].done:
                last = queue.popleft()
                self.queued[addr].discard(last.signature)
            if last is not None and last.outcome in ("finalized", "moved"):
                self.cursors_durable(addr, last)
                moved = True
            elif last is not None:
                # a retracted/vanished head: keep the durable position at the last surviving signature
                moved = True
        if moved:
            self._update_live_slot()
            self._changed.set()
            if self.on_commit is not None:
                self.on_commit()

    def cursors_durable(self, addr: str, job: Job) -> None:
        self.cp.address(addr).live = SigPos(job.signature, job.slot, job.block_time)

    def _update_live_slot(self) -> None:
        done_through = []
        acked_through = []
        for addr, queue in self.queues.items():
            done_through.append(queue[0].slot - 1 if queue else self.sweep_tip[addr])
            unacked = next((j.slot for j in queue if not j.acked), None)
            acked_through.append(unacked - 1 if unacked is not None else self.sweep_tip[addr])
        if done_through:
            self.cp.live_slot = min(done_through)
            self.stats.live_slot = min(acked_through)

    def pending(self) -> int:
        return sum(len(q) for q in self.queues.values()) + sum(1 for j in self.jobs.values() if not j.done)

    # -- hints --------------------------------------------------------------------------------------
    async def _hints(self) -> None:
        subs = [Subscription.slots()] + [Subscription.mentions(a) for a in self.addresses]
        ws = WsSubscriber(self.s.ws_url or "", subs, stall_timeout=self.s.ws_stall_timeout)
        gen = ws.events()
        try:
            async for event in gen:
                if event.kind == "logs":
                    self._hint(event.value or {}, event.slot)
                elif event.kind == "slot" and event.slot is not None:
                    self.stats.tip_slot = max(self.stats.tip_slot, event.slot)
                elif event.kind == "connected":
                    if event.epoch > 1:
                        self.stats.ws_reconnects += 1
                    self.request_sweep()  # anything said while we were away is found by the sweep
        finally:
            await gen.aclose()

    def _hint(self, value: dict, slot: int | None) -> None:
        sig = value.get("signature")
        if not sig or slot is None or slot <= self.seam_slot:
            return
        self.stats.hints += 1
        self._job(SigInfo(sig, int(slot), None, value.get("err"), "confirmed"))

    # -- housekeeping -------------------------------------------------------------------------------
    def _evict(self) -> None:
        floor = self.finalizer.finalized_slot - self.s.dedup_slots
        if floor <= 0:
            return
        stale = [s for s, j in self.jobs.items() if j.done and j.slot < floor]
        for sig in stale:
            del self.jobs[sig]

    async def _finalizer_loop(self) -> None:
        while not self.stop.is_set():
            try:
                await self.finalizer.round()
            except Stopped:
                return
            self._evict()
            self._update_live_slot()
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=self.s.finalize_interval)
            except TimeoutError:
                pass

    # -- running ------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Follow the chain until `stop` is set; raises the first fatal error."""
        await self.finalizer.round()  # learn the finalized slot before classifying anything
        self.finalizer.resume()       # what a previous run published at confirmed and left unresolved
        tasks = [asyncio.create_task(self.fetcher.run(), name="live-fetcher"),
                 asyncio.create_task(self._finalizer_loop(), name="live-finalizer"),
                 asyncio.create_task(self._sweeper(), name="live-sweeper")]
        if self.s.ws_url:
            tasks.append(asyncio.create_task(self._hints(), name="live-hints"))
        for t in tasks:  # a helper that dies (a bug, not an outage: those are retried) stops the tail
            t.add_done_callback(self._task_ended)
        try:
            await self.stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._drain()
        if self._error is not None:
            raise self._error

    def _task_ended(self, task: asyncio.Task) -> None:
        if task.cancelled() or self.stop.is_set():
            return
        exc = task.exception()
        self._fail(exc if exc is not None else SourceError(f"{task.get_name()} ended unexpectedly"))

    async def _drain(self) -> None:
        """On stop: abandon unfinished jobs. Their signatures are after the durable watermark, so the
        next start re-sweeps them (at worst re-sending them: duplicates, never gaps); the service
        flushes whatever was already handed to the producer."""
        running = [j.task for j in self.jobs.values() if j.task is not None and not j.task.done()]
        for t in running:
            t.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def wait_caught_up(self, require_final: bool = True, poll: float = 0.05) -> None:
        """Return once a sweep that started after this call was made has nothing unfinished left."""
        async with self._swept:
            # a sweep already running may have listed before our call: wait for the one after it
            target = self._sweep_count + (2 if self._sweeping else 1)
            self.request_sweep()
            await self._swept.wait_for(lambda: self._sweep_count >= target or self.stop.is_set())
        while not self.stop.is_set():
            if require_final:
                busy = self.pending() + len(self.finalizer.pending)
            else:
                busy = sum(1 for j in self.jobs.values() if not j.acked and not j.done)
            if busy == 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=poll)
        if self._error is not None:
            raise self._error
        raise Stopped("caught-up wait")


__all__ = ["Job", "LiveSettings", "LiveTail", "RpcError"]
