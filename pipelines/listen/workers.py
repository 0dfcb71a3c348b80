"""Backfill worker processes: fetch + decode + classify + publish chunks of finalized signatures.

WHY processes: measured on this project's machine, decode + classify is about half of the listener's
CPU per transaction and it holds the GIL, so one process tops out near ~3,300 tx/s. The backfill is
embarrassingly parallel once the main process has listed the signatures (windows, dedup, checkpoint
stay in the main process): each worker gets chunks of ~100 signatures, fetches them with its own
RPC client, publishes with its own producer, and answers only when Kafka acknowledged every message of
the chunk, so the main process's checkpoint rule ("advance only over acknowledged work") holds.
Live mode stays in the main process (low volume, latency matters).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import multiprocessing
import threading
import time
from collections import Counter
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any

import structlog

from indexer.sources.types import SigInfo

log = structlog.get_logger("pipelines.listen.workers")


class WorkerError(RuntimeError):
    """A worker failed a chunk (its error text) or died."""


# Imported once by the fork server, so that each worker starts as a fork of a warm interpreter.
# pipelines.listen.preload also builds the program registry and network config there (see its docstring).
PRELOAD = ["pipelines.listen.workers", "pipelines.listen.service", "indexer.decode.txparse",
           "indexer.networks.classify", "indexer.sources.backfill", "confluent_kafka", "aiohttp", "orjson",
           "pipelines.listen.preload"]


def worker_context() -> multiprocessing.context.BaseContext:
    """Workers come from a fork server (a clean single-threaded process that imported PRELOAD once).

    WHY: the parent has threads (librdkafka, executors), so it must never fork itself; spawning
    a fresh interpreter per worker costs ~1 CPU-second of imports each, i.e. ~100 us per
    transaction of an 18k-transaction backfill, every run. The fork server pays it once per parent
    process and forks each worker in milliseconds. Falls back to spawn where fork is unavailable."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def prefork_context() -> multiprocessing.context.BaseContext | None:
    """A plain fork of this process, or None when that is not safe here (then: worker_context).

    WHY: the fork server is a second interpreter that imports the whole listener again and builds the
    registry (~0.7 CPU-s at every `depinflow listen --workers N` start: ~20 us per transaction of a
    36k-transaction backfill). A process that has imported the listener but not started any thread
    yet (the CLI, before its event loop, producers and executors exist) is just as clean a parent,
    and forking it costs milliseconds. With a second thread alive, a fork could copy a lock held
    mid-operation, so then there is no fork."""
    if threading.active_count() != 1 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork")


class WorkerPool:
    """N worker processes (see worker_context); `run_chunk` is Backfill's chunk_runner.

    `ctx`: where workers come from (default worker_context(): the fork server; prefork_context() for
    a fork of this process, which then has to `spawn()` them before it starts any thread)."""

    def __init__(self, n: int, config: Any, on_stats=None,
                 ctx: multiprocessing.context.BaseContext | None = None) -> None:
        self.n = n
        self.config = config
        self.on_stats = on_stats
        self._ctx = ctx if ctx is not None else worker_context()
        self._workers: list[tuple[multiprocessing.Process, Connection, threading.Lock]] = []
        self._futures: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        self._ids = itertools.count(1)
        self._load = [0] * n
        self._readers: list[threading.Thread] = []

    def spawn(self) -> None:
        """Start the worker processes (idempotent; needs no event loop and starts no thread)."""
        if self._workers:
            return
        cfg = asdict(self.config)
        forking = self._ctx.get_start_method() == "fork"
        if forking:
            # what this process built so far is shared with the workers: keep their collections from
            # traversing (and copying the pages of) it, as the fork server's gc.freeze does (preload)
            gc.freeze()
        try:
            for i in range(self.n):
                parent, child = self._ctx.Pipe()
                # a fork inherits every open descriptor: the worker must close the parent's ends of
                # its own and its elder siblings' pipes, or a killed parent's pipes never reach EOF
                # and the workers outlive it (orphans waiting for chunks forever)
                inherited = [parent, *(conn for _, conn, _ in self._workers)] if forking else []
                proc = self._ctx.Process(target=worker_main, args=(child, cfg, inherited),
                                         name=f"depinflow-backfill-{i}", daemon=True)
                proc.start()
                child.close()
                self._workers.append((proc, parent, threading.Lock()))
        finally:
            if forking:
                gc.unfreeze()    # (this process's own collections see its objects again)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.spawn()
        for i, (_, parent, _) in enumerate(self._workers):
            reader = threading.Thread(target=self._read, args=(i, parent), daemon=True)
            reader.start()
            self._readers.append(reader)

    async def run_chunk(self, chunk: list[SigInfo]) -> None:
        loop = asyncio.get_running_loop()
        idx = min(range(self.n), key=self._load.__getitem__)
        proc, conn, lock = self._workers[idx]
        if not proc.is_alive():
            raise WorkerError(f"backfill worker {idx} died (exit code {proc.exitcode})")
        job = next(self._ids)
        fut = loop.create_future()
        self._futures[job] = (loop, fut)
        self._load[idx] += 1
        try:
            with lock:
                conn.send((job, [(i.signature, i.slot, i.block_time) for i in chunk]))
            await fut
        finally:
            self._load[idx] -= 1
            self._futures.pop(job, None)

    def _read(self, idx: int, conn: Connection) -> None:
        while True:
            try:
                job, error, stats = conn.recv()
            except (EOFError, OSError):
                self._fail_all(WorkerError(f"backfill worker {idx} exited"))
                return
            if stats and self.on_stats is not None:
                self._loop.call_soon_threadsafe(self.on_stats, stats)
            entry = self._futures.get(job)
            if entry is None:
                continue
            loop, fut = entry
            if error is None:
                loop.call_soon_threadsafe(_resolve, fut, None)
            else:
                loop.call_soon_threadsafe(_resolve, fut, WorkerError(error))

    def _fail_all(self, exc: Exception) -> None:
        for loop, fut in list(self._futures.values()):
            loop.call_soon_threadsafe(_resolve, fut, exc)

    def close(self, timeout: float = 30.0) -> None:
        for _, conn, lock in self._workers:
            try:
                with lock:
                    conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        deadline = time.monotonic() + timeout     # one deadline for all: a stop stays bounded
        for proc, conn, _ in self._workers:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(5)
            conn.close()
        self._workers.clear()


def _resolve(fut: asyncio.Future, exc: Exception | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)


# -- the worker process ---------------------------------------------------------------------------------
def worker_main(conn: Connection, cfg: dict, inherited: list[Connection] | None = None) -> None:
    import logging

    from pipelines.listen.processor import tune_gc

    for other in inherited or ():    # (a plain fork: the parent's ends of the pipes, see WorkerPool.spawn)
        other.close()

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    tune_gc()
    asyncio.run(_worker(conn, cfg))


async def _worker(conn: Connection, cfg: dict) -> None:
    from indexer.rpc import RpcClient
    from indexer.sources.backfill import fetch_finalized, fetched_batch
    from indexer.sources.types import SourceStats
    from pipelines.kafka.topics import Topics
    from pipelines.listen.config import ListenerConfig
    from pipelines.listen.processor import KafkaProcessor, ProcessStats
    from pipelines.listen.service import Listener

    config = ListenerConfig(**cfg)
    loop = asyncio.get_running_loop()
    shell = Listener(config)                        # reuse its publisher / classifier construction
    publisher = await shell._publisher(loop, backfill=True)   # chunks only: throughput settings
    stats = ProcessStats()
    processor = KafkaProcessor(publisher, Topics(config.topic_prefix), shell._classifier(),
                               config.publish_instructions, stats)
    rpc = RpcClient(config.rpc_url, concurrency=max(4, config.rpc_concurrency // 2), timeout=config.rpc_timeout,
                    max_batch=config.rpc_batch, use_batches=config.rpc_use_batches,
                    rate_limits=config.rate_limits or None)
    source_stats = SourceStats()
    send_lock = asyncio.Lock()
    tasks: set[asyncio.Task] = set()

    reported = [_snapshot(stats)]

    async def handle(job: int, items: list[tuple[str, int, int | None]]) -> None:
        error = None
        try:
            chunk = [SigInfo(sig, slot, bt) for sig, slot, bt in items]
            results = await fetch_finalized(rpc, chunk, encoding="base64", stats=source_stats, stop=None)
            await processor.process_batch(fetched_batch(chunk, results, "backfill"))
        except Exception as exc:  # reported to the main process, which fails closed
            error = f"{type(exc).__name__}: {exc}"
        async with send_lock:  # counters since the previous answer, so concurrent chunks never double count
            now = _snapshot(stats)
            conn.send((job, error, _delta(reported[0], now)))
            reported[0] = now

    try:
        while True:
            msg = await loop.run_in_executor(None, conn.recv)
            if msg is None:
                break
            task = asyncio.create_task(handle(*msg))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    except (EOFError, OSError):
        pass
    finally:
        await publisher.aclose(config.shutdown_grace)   # bounded: see Listener._close_publishers
        await rpc.close()


def _snapshot(stats) -> dict:
    return {"events": Counter(stats.events), "instructions": stats.instructions,
            "dead_letters": Counter(stats.dead_letters), "failed_txs": stats.failed_txs,
            "txs": Counter(stats.txs), "cpu_seconds": stats.cpu_seconds}


def _delta(before: dict, after: dict) -> dict:
    return {key: value - before[key] for key, value in after.items()}


def merge_stats(target, delta: dict) -> None:
    """Add a worker's counters into the main process's ProcessStats (for metrics and the summary)."""
    target.events.update(delta.get("events", {}))
    target.dead_letters.update(delta.get("dead_letters", {}))
    target.txs.update(delta.get("txs", {}))
    target.instructions += delta.get("instructions", 0)
    target.failed_txs += delta.get("failed_txs", 0)
    target.cpu_seconds += delta.get("cpu_seconds", 0.0)
