"""The sink: Kafka consumer group -> batched ClickHouse inserts -> offsets committed after the insert.

Delivery: at-least-once from Kafka, exactly-once in effect in ClickHouse (ReplacingMergeTree keyed by
event_id, versions derived from commitment). So the one rule that matters is ordering: an offset is
committed only after every row of every message before it is in ClickHouse (or in dead_letters).
A crash anywhere before the commit re-delivers the batch, which then collapses onto the same rows.

Use in-process (next to the listener): `Sink(SinkConfig(...)).run(stop_event)` or `.run_until_idle()`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import structlog
from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from infra.local.clickhouse import get_client, redact_dsn
from pipelines.clickhouse.migrate import migrate
from pipelines.clickhouse.tables import (
    COMMITMENT_STATUS,
    DEAD_LETTERS,
    EMISSIONS,
    FLOW_TABLES,
    INSTRUCTIONS,
    OTHER_FLOWS,
    USAGE_FEES,
    VERSIONED_TABLES,
    TableSpec,
)
from pipelines.kafka.client import make_consumer
from pipelines.kafka.topics import Topics
from pipelines.sink.config import SinkConfig
from pipelines.sink.metrics import SinkMetrics
from pipelines.sink.rows import (
    KIND_DEADLETTER,
    KIND_FLOW,
    KIND_INSTRUCTION,
    KIND_STATUS,
    Rejected,
    Source,
    parse,
    sink_dead_letter,
)
from pipelines.sink.writer import ClickHouseUnavailable, Writer

log = structlog.get_logger(__name__)

# insert order: events before statuses (then reconcile), dead letters last (insert failures add to them)
DATA_TABLES: tuple[TableSpec, ...] = (USAGE_FEES, EMISSIONS, OTHER_FLOWS, INSTRUCTIONS, COMMITMENT_STATUS)


class SinkStopped(Exception):
    """Stop was requested while ClickHouse was unavailable: the batch is abandoned uncommitted."""


@dataclass
class SinkStats:
    messages: int = 0
    batches: int = 0
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    dead_letters: int = 0
    retries: int = 0
    commits: int = 0
    abandoned_batches: int = 0


@dataclass
class Batch:
    """Parsed rows waiting for one flush, with the next offset to commit per partition."""

    rows: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    sources: dict[str, list[Source]] = field(default_factory=lambda: defaultdict(list))
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    count: int = 0
    started: float = 0.0

    def add(self, spec: TableSpec, row: tuple, src: Source) -> None:
        if not self.count:
            self.started = time.monotonic()
        self.rows[spec.name].append(row)
        self.sources[spec.name].append(src)
        self.count += 1


def slot_range(spec: TableSpec, rows: list[tuple]) -> tuple[int, int] | None:
    if not rows:
        return None
    i = spec.index("slot")
    slots = [r[i] for r in rows]
    return min(slots), max(slots)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def on_partitions_revoked(self, revoked):
        self.sink._on_revoked(revoked)

    def on_partitions_assigned(self, assigned):
        log.info("sink_partitions_assigned", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))


class Sink:
    """One member of the sink consumer group."""

    def __init__(self, config: SinkConfig, *, client=None, metrics: SinkMetrics | None = None) -> None:
        self.config = config
        self.topics = Topics(config.topic_prefix)
        self.kinds = {self.topics.flows: KIND_FLOW, self.topics.instructions: KIND_INSTRUCTION,
                      self.topics.deadletter: KIND_DEADLETTER, self.topics.status: KIND_STATUS}
        self.metrics = metrics or SinkMetrics()
        self.stats = SinkStats()
        self._client = client
        self._writer: Writer | None = None
        self._consumer = None
        self._batch = Batch()
        self._committed: dict[TopicPartition, int] = {}
        self._stop = threading.Event()
        self._flushing = False
        self._metrics_server = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect to ClickHouse (retrying), apply migrations, join the consumer group."""
        if self._consumer is not None:
            return
        if self.config.metrics_port is not None and self._metrics_server is None:
            self._metrics_server = self.metrics.serve(self.config.metrics_port, self.config.metrics_host)
        self._with_retry(self._ensure_writer)
        overrides = {"max_poll_records": self.config.max_poll_records, "client_id": self.config.client_id,
                     **self.config.consumer_overrides}
        self._consumer = make_consumer(self.config.bootstrap, self.config.group_id, **overrides)
        self._consumer.subscribe(topics=list(self.kinds), listener=_Rebalance(self))
        log.info("sink_started", bootstrap=self.config.bootstrap, group=self.config.group_id,
                 topics=list(self.kinds), clickhouse=redact_dsn(self.config.clickhouse_dsn),
                 database=self.config.database)

    def close(self) -> None:
        """Leave the group without committing anything not yet flushed (it will be re-read)."""
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                log.warning("sink_consumer_close_failed", error=str(exc))
            self._consumer = None
        if self._metrics_server is not None:
            server, _thread = self._metrics_server
            server.shutdown()
            self._metrics_server = None

    def stop(self) -> None:
        self._stop.set()

    def run(self, stop_event: threading.Event | None = None) -> SinkStats:
        """Consume until `stop_event` (or .stop()) is set; flushes what it holds before returning."""
        stop = stop_event or self._stop
        self._stop = stop
        try:
            self.start()
            while not stop.is_set():
                self._poll_once()
                if self._due():
                    self._flush()
            self._flush()
        except SinkStopped:
            self.stats.abandoned_batches += 1
        finally:
            self.close()
        return self.stats

    def run_until_idle(self, idle_seconds: float = 2.0, timeout: float = 180.0) -> SinkStats:
        """Consume until every assigned partition is at its high watermark and nothing came for
        `idle_seconds`, flushing as it goes (tests, demos, one-shot loads). Raises TimeoutError."""
        self.start()
        deadline = time.monotonic() + timeout
        idle_since: float | None = None
        try:
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"sink not idle after {timeout}s (stats {self.stats})")
                got = self._poll_once()
                if self._due() or (not got and self._batch.count):
                    self._flush()
                if got or self._batch.count or not self._caught_up():
                    idle_since = None
                    continue
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= idle_seconds:
                    return self.stats
        finally:
            self.close()

    # ------------------------------------------------------------ consuming
    def _poll_once(self) -> int:
        room = self.config.batch_rows - self._batch.count    # batches never exceed batch_rows
        records = self._consumer.poll(timeout_ms=self.config.poll_timeout_ms,
                                      max_records=max(1, min(self.config.max_poll_records, room)))
        n = 0
        for tp, recs in records.items():
            kind = self.kinds[tp.topic]
            for r in recs:
                self._add(kind, tp, r)
            n += len(recs)
            self.metrics.messages.labels(tp.topic).inc(len(recs))
            self._batch.offsets[tp] = recs[-1].offset + 1
        self.stats.messages += n
        return n

    def _add(self, kind: str, tp: TopicPartition, r) -> None:
        src = Source(tp.topic, tp.partition, r.offset, r.timestamp, r.key, r.value, r.headers)
        try:
            spec, row = parse(kind, src)
        except Rejected as rej:
            self._dead_letter(src, "sink.parse", rej.reason, rej.detail)
            return
        except Exception as exc:  # noqa: BLE001 - one odd message must never stop the partition
            self._dead_letter(src, "sink.parse", "parse_error", f"{type(exc).__name__}: {exc}")
            return
        self._batch.add(spec, row, src)

    def _dead_letter(self, src: Source, stage: str, reason: str, detail: str) -> None:
        self._batch.add(DEAD_LETTERS, sink_dead_letter(src, stage, reason, detail), src)
        self.metrics.dead_letters.labels(stage, reason).inc()
        self.stats.dead_letters += 1
        log.warning("sink_dead_letter", stage=stage, reason=reason, topic=src.topic,
                    partition=src.partition, offset=src.offset, detail=detail[:300])

    def _due(self) -> bool:
        b = self._batch
        return b.count >= self.config.batch_rows or (
            b.count > 0 and time.monotonic() - b.started >= self.config.batch_seconds)

    def _caught_up(self) -> bool:
        assigned = self._consumer.assignment()
        if not assigned:
            return False
        for tp in assigned:
            hw = self._consumer.highwater(tp)
            if hw is None or self._consumer.position(tp) < hw:
                return False
        return True

    # ------------------------------------------------------------ flushing
    def _flush(self, retry: bool = True) -> None:
        batch = self._batch
        if not batch.offsets:
            return
        started = time.perf_counter()
        self._flushing = True
        try:
            written = self._with_retry(lambda: self._write(batch)) if retry else self._write(batch)
        finally:
            self._flushing = False
        if self._batch is not batch:      # lost the partitions while retrying: the new owner re-reads
            return
        self._commit(batch.offsets)
        self._batch = Batch()
        elapsed = time.perf_counter() - started
        self._record(written, elapsed)

    def _record(self, written: dict[str, int], elapsed: float) -> None:
        for key in [k for k in written if k.startswith("!")]:   # rows refused by ClickHouse
            n = written.pop(key)
            self.metrics.insert_errors.labels(key[1:], "row").inc(n)
            self.metrics.dead_letters.labels("sink.insert", "insert_failed").inc(n)
            self.stats.dead_letters += n
        total = sum(written.values())
        self.metrics.batch_seconds.observe(elapsed)
        self.metrics.batch_rows.observe(total)
        for table, n in written.items():
            self.metrics.rows.labels(table).inc(n)
            self.metrics.rows_per_second.labels(table).set(n / elapsed if elapsed > 0 else 0)
            self.stats.rows[table] += n
        self.stats.batches += 1
        log.info("sink_batch_committed", rows=total, seconds=round(elapsed, 4), tables=dict(written))

    def _write(self, batch: Batch) -> dict[str, int]:
        """Insert everything in the batch and reconcile commitments. Idempotent: safe to repeat.

        Returns rows written per table, plus `!table` counts of rows ClickHouse refused (recorded
        in metrics only once the batch is committed, so a retried batch is not counted twice)."""
        writer = self._ensure_writer()
        written: dict[str, int] = {}
        dead_rows = list(batch.rows.get(DEAD_LETTERS.name, ()))
        dead_sources = list(batch.sources.get(DEAD_LETTERS.name, ()))
        for spec in DATA_TABLES:
            rows = batch.rows.get(spec.name)
            if not rows:
                continue
            failed = writer.insert(spec, rows, batch.sources[spec.name])
            for f in failed:
                written[f"!{spec.name}"] = written.get(f"!{spec.name}", 0) + 1
                dead_rows.append(sink_dead_letter(f.source, "sink.insert", f.reason, f.detail))
                dead_sources.append(f.source)
            written[spec.name] = len(rows) - len(failed)
        if dead_rows:
            written[DEAD_LETTERS.name] = self._write_dead_letters(writer, dead_rows, dead_sources)
        self._reconcile(writer, batch)
        return written

    def _write_dead_letters(self, writer: Writer, rows: list[tuple], sources: list[Source]) -> int:
        failed = writer.insert(DEAD_LETTERS, rows, sources)
        if failed:  # an upstream dead letter ClickHouse refused: keep its raw bytes as a sink one
            fallback = [sink_dead_letter(f.source, "sink.insert", f.reason, f.detail) for f in failed]
            if writer.insert(DEAD_LETTERS, fallback, [f.source for f in failed]):
                raise ClickHouseUnavailable("dead_letters refuses even minimal rows")
        return len(rows)

    def _reconcile(self, writer: Writer, batch: Batch) -> None:
        ranges = [slot_range(spec, batch.rows.get(spec.name, [])) for spec in (*FLOW_TABLES, INSTRUCTIONS)]
        ranges = [r for r in ranges if r]
        status = slot_range(COMMITMENT_STATUS, batch.rows.get(COMMITMENT_STATUS.name, []))
        todo = []
        if ranges:
            todo.append((min(r[0] for r in ranges), max(r[1] for r in ranges)))
        if status:
            todo.append(status)
        for lo, hi in todo:
            try:
                writer.reconcile(lo, hi, VERSIONED_TABLES)
            except Exception as exc:  # noqa: BLE001 - retried with the batch, like an insert
                raise ClickHouseUnavailable(f"reconcile of slots {lo}..{hi} failed: {exc}") from exc

    def _ensure_writer(self) -> Writer:
        if self._writer is None:
            try:
                client = self._client or get_client(self.config.clickhouse_dsn)
                if self.config.migrate:
                    migrate(client, self.config.database, self.config.cluster)
            except Exception as exc:  # noqa: BLE001 - unreachable server: retried with backoff
                raise ClickHouseUnavailable(f"cannot open ClickHouse "
                                            f"{redact_dsn(self.config.clickhouse_dsn)}: {exc}") from exc
            self._client = client
            self._writer = Writer(client, self.config.database)
        return self._writer

    def _with_retry(self, fn):
        """Call fn until it stops raising ClickHouseUnavailable, backing off; nothing is committed meanwhile."""
        delay = self.config.retry_initial_seconds
        batch = self._batch
        while True:
            try:
                return fn()
            except ClickHouseUnavailable as exc:
                self.stats.retries += 1
                self.metrics.retries.inc()
                self.metrics.insert_errors.labels("*", "unavailable").inc()
                log.warning("sink_clickhouse_unavailable", error=str(exc)[:500], retry_in=round(delay, 2))
                if self._stop.is_set():
                    raise SinkStopped(str(exc)) from exc
                self._wait(delay * random.uniform(0.8, 1.2))
                if self._batch is not batch:
                    return {}
                delay = min(delay * 2, self.config.retry_max_seconds)

    def _wait(self, seconds: float) -> None:
        """Sleep while keeping the group membership alive (paused partitions return no records)."""
        end = time.monotonic() + seconds
        consumer = self._consumer
        if consumer is None:
            self._stop.wait(seconds)
            return
        assigned = consumer.assignment()
        consumer.pause(*assigned)
        try:
            while time.monotonic() < end and not self._stop.is_set():
                consumer.poll(timeout_ms=max(1, int(min(0.5, end - time.monotonic()) * 1000)))
        finally:
            consumer.resume(*[tp for tp in assigned if tp in consumer.assignment()])

    def _on_revoked(self, revoked) -> None:
        """Commit what we hold before losing the partitions; if we cannot, drop it uncommitted
        (positions restart from the committed offsets after the rebalance, so nothing is lost)."""
        if not self._batch.offsets:
            return
        if self._flushing:
            self._abandon("rebalance during a ClickHouse outage")
            return
        try:
            self._flush(retry=False)
        except ClickHouseUnavailable as exc:
            self._abandon(f"rebalance: {exc}")

    def _abandon(self, why: str) -> None:
        log.warning("sink_batch_abandoned", why=why, rows=self._batch.count)
        self.stats.abandoned_batches += 1
        self._batch = Batch()

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        meta = {tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()}
        for attempt in range(3):
            try:
                self._consumer.commit(offsets=meta)
                break
            except KafkaError as exc:
                log.warning("sink_commit_failed", attempt=attempt + 1, error=str(exc))
                if attempt == 2:  # rows are in ClickHouse; a re-read after restart is harmless
                    return
                time.sleep(0.2 * (attempt + 1))
        self.stats.commits += 1
        self._committed.update(offsets)
        self.metrics.last_commit.set(time.time())
        self._update_lag()

    def _update_lag(self) -> None:
        for tp, committed in self._committed.items():
            hw = self._consumer.highwater(tp)
            self.metrics.committed.labels(tp.topic, str(tp.partition)).set(committed)
            if hw is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, hw - committed))
