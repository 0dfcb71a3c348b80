"""The listener service: Solana RPC -> decode -> classify -> Kafka, resumable from its checkpoint.

Use in-process (next to the sink), from any thread:

    listener = Listener(ListenerConfig(rpc_url=..., bootstrap=..., since="2026-03-28"))
    listener.run(stop_event)              # follow the chain until stop_event (threading.Event) is set
    listener.run_until_caught_up()        # backfill + everything up to the tip, finalized; then return

or from a running event loop: `await listener.arun(stop)` / `await listener.arun_until_caught_up()`.
The checkpoint (ListenerConfig.checkpoint) makes every run continue where the last one stopped, after
a clean stop as after a kill -9. Duplicates after a crash are possible and counted; gaps are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from dataclasses import dataclass

import structlog

from indexer.checkpoint import CheckpointStore
from indexer.networks.classify import Classifier
from indexer.networks.watch import watched_addresses
from indexer.rpc import RpcClient, RpcStats, redact_url
from indexer.sources.backfill import BackfillSettings
from indexer.sources.follower import Follower, FollowerSettings
from indexer.sources.live import LiveSettings
from indexer.sources.types import LowerBound, SourceStats
from pipelines.kafka.client import BrokerWaitStopped, make_producer, until_broker_reachable
from pipelines.kafka.topics import Topics, ensure_topics, ensure_topics_confluent
from pipelines.listen.config import ListenerConfig
from pipelines.listen.metrics import ListenerMetrics
from pipelines.listen.processor import KafkaProcessor, ProcessStats, restore_gc, tune_gc
from pipelines.listen.progress import draw
from pipelines.listen.publisher import (
    BACKFILL_OVERRIDES,
    ConfluentPublisher,
    KafkaPublisher,
    confluent_available,
)

log = structlog.get_logger("pipelines.listen")

# The listener does not need per-partition order (every row is versioned by slot and commitment
# downstream), so it may keep several requests in flight and batch a little longer.
KAFKA_PYTHON_OVERRIDES = {"linger_ms": 20, "max_in_flight_requests_per_connection": 5}


@dataclass
class ListenerSummary:
    transactions: int
    events: int
    instructions: int
    dead_letters: int
    statuses: int
    duplicates_after_restart: int
    seconds: float
    seam_slot: int | None
    backfill_low_slot: int | None
    live_slot: int | None
    unacknowledged: int = 0           # messages given up unacknowledged at the stop (not checkpointed)

    @property
    def tx_per_second(self) -> float:
        return self.transactions / self.seconds if self.seconds > 0 else 0.0


class Listener:
    def __init__(self, config: ListenerConfig, *, classifier: Classifier | None = None) -> None:
        self.config = config
        self.classifier = classifier
        self.rpc_stats = RpcStats()
        self.source_stats = SourceStats()
        self.process_stats = ProcessStats()
        self.follower: Follower | None = None
        self.processor: KafkaProcessor | None = None
        self.topics = Topics(config.topic_prefix)
        self.kafka_client = ""
        self.metrics = ListenerMetrics()
        self.metrics.attach(self)
        self.unacknowledged = 0
        self._pool = None            # backfill workers started by prefork_workers(), not yet in use

    def prefork_workers(self) -> bool:
        """Start the backfill workers now as forks of this process, if this process is still single-
        threaded (pipelines.listen.workers.prefork_context); True if it did. Call it before the event
        loop runs (`depinflow listen` does); otherwise the run starts them from the fork server.

        WHY: the fork server costs ~0.7 CPU-s per start (a second interpreter importing the listener);
        the registry and network config are built here first, so every worker inherits them."""
        if not self._uses_workers() or self._pool is not None:
            return False
        from pipelines.listen.workers import prefork_context
        ctx = prefork_context()
        if ctx is None:
            return False
        from indexer.decode.registry import default_registry
        from indexer.networks.config import default_config
        default_registry()
        default_config()
        pool = self._worker_pool(ctx)
        pool.spawn()
        self._pool = pool
        return True

    def _uses_workers(self) -> bool:
        """Backfill chunks go to worker processes (--workers N; address mode only)."""
        return self.config.workers > 0 and self.config.mode == "addresses"

    def _worker_pool(self, ctx=None):
        """The backfill workers (pipelines.listen.workers), their stats merged into this listener's;
        `ctx` None: from the fork server."""
        from pipelines.listen.workers import WorkerPool, merge_stats
        return WorkerPool(self.config.workers, self.config,
                          on_stats=lambda delta: merge_stats(self.process_stats, delta), ctx=ctx)

    # -- configuration ------------------------------------------------------------------------------
    def addresses(self) -> list[str]:
        per_network = watched_addresses()
        out: list[str] = []
        for net in self.config.networks:
            out.extend(per_network[net])
        out.extend(self.config.extra_addresses)
        return list(dict.fromkeys(out))

    def _settings(self) -> FollowerSettings:
        c = self.config
        return FollowerSettings(
            addresses=self.addresses(),
            lower=LowerBound(c.from_slot, c.since_ts),
            backfill=BackfillSettings(page_limit=c.page_limit, fetch_batch=c.rpc_batch,
                                      fetch_concurrency=c.fetch_concurrency,
                                      windows_in_flight=c.windows_in_flight),
            live=LiveSettings(page_limit=c.page_limit, sweep_interval=c.sweep_interval,
                              finalize_interval=c.finalize_interval, fetch_batch=c.rpc_batch,
                              ws_url=c.effective_ws_url, ws_stall_timeout=c.ws_stall_timeout),
            checkpoint_interval=c.checkpoint_interval,
            follow_live=True,
            networks=list(c.networks),
            mode=c.mode,
        )

    def _classifier(self) -> Classifier:
        if self.classifier is not None:
            return self.classifier
        prices = None
        if self.config.prices:
            from indexer.networks.prices import PriceBook
            prices = PriceBook.load(self.config.prices)
        return Classifier(prices=prices)

    # -- sync API (any thread) --------------------------------------------------------------------------
    def run(self, stop_event: threading.Event | None = None) -> ListenerSummary:
        """Follow the chain until `stop_event` is set (or forever); returns a summary."""
        return asyncio.run(self.arun(stop_event))

    def run_until_caught_up(self, require_final: bool = True, timeout: float | None = None) -> ListenerSummary:
        """Backfill, then process the live tail up to the tip (finalized when require_final); return."""
        async def main() -> ListenerSummary:
            coro = self.arun_until_caught_up(require_final)
            return await (asyncio.wait_for(coro, timeout) if timeout else coro)
        return asyncio.run(main())

    # -- async API -------------------------------------------------------------------------------------
    async def arun_until_caught_up(self, require_final: bool = True) -> ListenerSummary:
        return await self.arun(None, until_caught_up=True, require_final=require_final)

    async def arun(self, stop: threading.Event | asyncio.Event | None = None, *, until_caught_up: bool = False,
                   require_final: bool = True) -> ListenerSummary:
        gc_before = tune_gc()   # ~10 % of the listener's CPU was garbage collection (processor.tune_gc)
        try:
            return await self._arun(stop, until_caught_up, require_final)
        finally:
            restore_gc(gc_before)
            if self._pool is not None:     # preforked workers the run never took (it stopped early)
                pool, self._pool = self._pool, None
                await asyncio.get_running_loop().run_in_executor(None, pool.close, self.config.shutdown_grace)

    async def _arun(self, stop: threading.Event | asyncio.Event | None, until_caught_up: bool,
                    require_final: bool) -> ListenerSummary:
        c = self.config
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        if not await self._ensure_topics(loop, stop):
            return self.summary(time.monotonic() - started)     # stopped before the broker ever answered
        publisher = await self._publisher(loop)
        batch_factory = None
        if self.kafka_client == "confluent" and c.workers == 0:
            def batch_factory() -> ConfluentPublisher:
                return self._confluent(loop, backfill=True)
        processor = KafkaProcessor(publisher, self.topics, self._classifier(), c.publish_instructions,
                                   self.process_stats, batch_publisher_factory=batch_factory)
        self.processor = processor
        rpc = RpcClient(c.rpc_url, concurrency=c.rpc_concurrency, timeout=c.rpc_timeout, max_batch=c.rpc_batch,
                        use_batches=c.rpc_use_batches, rate_limits=c.rate_limits or None, stats=self.rpc_stats)
        settings = self._settings()
        pool = None
        if self._uses_workers():
            pool, self._pool = self._pool, None
            if pool is None:
                pool = self._worker_pool()
            await loop.run_in_executor(None, pool.start, loop)
            settings.chunk_runner = pool.run_chunk
        self.follower = Follower(rpc, processor, CheckpointStore(c.checkpoint), settings, self.source_stats)
        if c.metrics_port is not None:
            self.metrics.serve(c.metrics_port, c.metrics_host)
        log.info("listener_starting", rpc=redact_url(c.rpc_url), ws=redact_url(c.effective_ws_url or ""),
                 networks=c.networks, addresses=len(self.follower.s.addresses), bootstrap=c.bootstrap,
                 topics=self.topics.all(), kafka_client=self.kafka_client, checkpoint=c.checkpoint,
                 since=c.since, from_slot=c.from_slot)
        stop_async = asyncio.Event()
        watcher = asyncio.create_task(_watch(stop, stop_async)) if stop is not None else None
        bar = None
        try:
            await self.follower.prepare()
            if self._want_progress() and (c.mode == "blocks" or not self.follower.cp.backfill_done):
                bar = asyncio.create_task(self._progress(stop_async))
            existing = asyncio.all_tasks()   # the caller's tasks (and ours so far): never cancelled below
            run = asyncio.create_task(self.follower.run(stop_async, until_caught_up=until_caught_up,
                                                        require_final=require_final), name="follower")
            try:
                # the follower's own stop: set on our stop, once caught up, or on its first error
                await self._await_follower(run, self.follower.stop, existing)
            except asyncio.CancelledError:
                run.cancel()
                with contextlib.suppress(BaseException):
                    await run
                raise
        finally:
            stop_async.set()
            for task in (watcher, bar):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
            self.unacknowledged = await self._close_publishers(publisher, processor)
            if pool is not None:
                await loop.run_in_executor(None, pool.close, c.shutdown_grace)
            await rpc.close()
            self.metrics.close()
        summary = self.summary(time.monotonic() - started)
        log.info("listener_stopped", **summary.__dict__)
        return summary

    async def _await_follower(self, run: asyncio.Task, stop: asyncio.Event, foreign: set[asyncio.Task]) -> None:
        """Wait for the follower; once a stop is requested, for at most `shutdown_grace` s more.

        WHY: a stop cancels the live tail's helper tasks once. A task that swallows that single
        cancellation (e.g. Python 3.11's asyncio.wait_for returning a result that completed in the
        same instant, around a websocket receive) keeps the follower waiting for it forever; the
        crash suite saw SIGTERM stops end in SIGKILL after 60 s with no log line at all. Past the
        grace period the stuck tasks are logged (name and innermost frames) and cancelled again
        until they end. The checkpoint stays correct: it only ever covers acknowledged work and
        the follower still saves it on the way out."""
        grace = self.config.shutdown_grace
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({run, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if not run.done():
            await asyncio.wait({run}, timeout=grace)
        if not run.done():
            stuck = [t for t in asyncio.all_tasks() - foreign
                     if t is not asyncio.current_task() and t is not run and not t.done()]
            log.error("listener_stop_stuck", grace_seconds=grace, tasks=[_describe(t) for t in stuck])
            deadline = time.monotonic() + max(grace, 1.0)
            while not run.done() and time.monotonic() < deadline:
                for t in stuck:
                    t.cancel()
                await asyncio.wait({run}, timeout=0.2)
            if not run.done():
                run.cancel()
                await asyncio.wait({run}, timeout=grace)
        if run.done() and not run.cancelled():
            run.result()   # the follower's error, if any (fail closed)
        elif run.cancelled():
            # (also when a stuck task we cancelled was the live tail the follower awaited)
            raise RuntimeError(f"listener stop: tasks did not end within {grace} s and were cancelled; the "
                               "checkpoint was saved and covers only acknowledged work")

    async def _close_publishers(self, publisher: KafkaPublisher | ConfluentPublisher,
                                processor: KafkaProcessor) -> int:
        """Flush the live and the backfill producer together within ONE grace period; return how many
        messages were given up unacknowledged (and say so in the log).

        WHY: each used to flush for up to 30 s, one after the other. With the broker killed or just
        restarted, librdkafka retries undelivered messages for delivery.timeout.ms (120 s), so a
        SIGTERM stop took 30-60 s and was then killed by its supervisor. Waiting longer buys nothing:
        the follower has already saved the checkpoint, which never covers an unacknowledged message;
        the next start re-sends those (duplicates, counted; never gaps)."""
        grace = self.config.shutdown_grace
        closing = [publisher]
        if processor.batch_publisher not in (None, publisher):
            closing.append(processor.batch_publisher)
        t0 = time.monotonic()
        left = sum(await asyncio.gather(*(p.aclose(grace) for p in closing)))
        if left:
            log.error("listener_stop_unacknowledged", unacknowledged=left, grace_seconds=grace,
                      waited_seconds=round(time.monotonic() - t0, 3),
                      detail="gave up on messages Kafka did not acknowledge; they are not checkpointed "
                             "and the next start sends them again")
        return left

    async def _ensure_topics(self, loop: asyncio.AbstractEventLoop,
                             stop: threading.Event | asyncio.Event | None) -> bool:
        """Create missing topics, waiting for an unreachable broker (pipelines.kafka.client.until_broker_reachable)
        instead of exiting; False when a stop came first."""
        c = self.config
        # the producer's own library checks the topics: on confluent-kafka, kafka-python is never imported
        ensure = ensure_topics_confluent if self._client() == "confluent" else ensure_topics
        waiting = threading.Event()                   # the wait runs in a thread: mirror the stop into it
        mirror = asyncio.create_task(_watch(stop, waiting)) if stop is not None else None
        try:
            await loop.run_in_executor(None, lambda: until_broker_reachable(
                lambda: ensure(c.bootstrap, self.topics.all(), c.partitions), "listener topics", waiting))
            return True
        except BrokerWaitStopped:
            return False
        finally:
            if mirror is not None:
                mirror.cancel()

    async def _publisher(self, loop: asyncio.AbstractEventLoop,
                         backfill: bool = False) -> KafkaPublisher | ConfluentPublisher:
        """The Kafka publisher; `backfill` = throughput settings (BACKFILL_OVERRIDES, confluent only)."""
        c = self.config
        client = self.kafka_client = self._client()
        if client == "confluent":
            return self._confluent(loop, backfill)
        observe = self.metrics.kafka_send_seconds.observe
        settings = {**KAFKA_PYTHON_OVERRIDES, **c.producer_overrides}
        producer = await loop.run_in_executor(None, lambda: make_producer(c.bootstrap, **settings))
        publisher = KafkaPublisher(producer, loop, on_latency=observe)
        await loop.run_in_executor(None, publisher.learn_partitions, self.topics.all())
        return publisher

    def _client(self) -> str:
        """The producer library: the configured one, or for "auto" confluent-kafka when installed."""
        client = self.config.kafka_client
        if client == "auto":
            client = "confluent" if confluent_available() else "kafka-python"
        return client

    def _confluent(self, loop: asyncio.AbstractEventLoop, backfill: bool) -> ConfluentPublisher:
        overrides = {**BACKFILL_OVERRIDES, **self.config.producer_overrides} if backfill else \
            self.config.producer_overrides
        return ConfluentPublisher(self.config.bootstrap, loop, on_latency=self.metrics.kafka_send_seconds.observe,
                                  overrides=overrides)

    async def _progress(self, stop: asyncio.Event) -> None:
        assert self.follower is not None
        while self.follower.backfill is None and self.follower.walker is None and not stop.is_set():
            await asyncio.sleep(0.05)
        source = self.follower.backfill or self.follower.walker
        if source is not None:
            await draw(source.progress, stop)

    def _want_progress(self) -> bool:
        mode = self.config.progress
        return mode == "on" or (mode == "auto" and sys.stderr.isatty())

    def summary(self, seconds: float) -> ListenerSummary:
        cp = self.follower.cp if self.follower else None
        p = self.process_stats
        return ListenerSummary(
            transactions=sum(self.source_stats.txs.values()), events=sum(p.events.values()),
            instructions=p.instructions, dead_letters=sum(p.dead_letters.values()),
            statuses=sum(p.statuses.values()), duplicates_after_restart=self.source_stats.replayed,
            seconds=round(seconds, 3), seam_slot=cp.seam_slot if cp else None,
            backfill_low_slot=cp.backfill_low_slot if cp else None, live_slot=cp.live_slot if cp else None,
            unacknowledged=self.unacknowledged)


def _describe(task: asyncio.Task) -> str:
    """A task's name and its innermost frames (what it waits on), for the stuck-stop log line."""
    frames = task.get_stack(limit=None)[-3:]
    return task.get_name() + ": " + " <- ".join(
        f"{f.f_code.co_filename.rsplit('/', 1)[-1]}:{f.f_lineno} {f.f_code.co_name}" for f in reversed(frames))


async def _watch(source: threading.Event | asyncio.Event, target: asyncio.Event | threading.Event) -> None:
    """Bridge a caller's stop event (thread or asyncio) to the listener's own (or to a waiting thread's)."""
    if isinstance(source, asyncio.Event):
        await source.wait()
    else:
        while not source.is_set():
            await asyncio.sleep(0.1)
    target.set()
