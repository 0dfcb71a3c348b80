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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import add, eq, is_, is_not, not_

import structlog
from kafka import TopicPartition

from infra.local.clickhouse import get_client, is_embedded, redact_dsn
from pipelines.clickhouse.migrate import migrate
from pipelines.clickhouse.tables import (
    COMMITMENT_STATUS,
    DEAD_LETTERS,
    FLOW_CLASSES_BY_TABLE,
    FLOW_TABLES,
    INSTRUCTIONS,
    VERSIONED_TABLES,
    TableSpec,
    flow_table,
)
from pipelines.kafka.client import BrokerWaitStopped
from pipelines.kafka.topics import Topics
from pipelines.sink import jsonflows, jsoninstructions
from pipelines.sink.columns import flow_columns
from pipelines.sink.config import SinkConfig
from pipelines.sink.consumer import CommitFailed, KafkaPythonSource, open_source
from pipelines.sink.gaps import OffsetGaps
from pipelines.sink.inflow import BULK_BATCH_SECONDS, InflowMeter
from pipelines.sink.metrics import SinkMetrics
from pipelines.sink.rows import (
    KIND_DEADLETTER,
    KIND_FLOW,
    KIND_INSTRUCTION,
    KIND_STATUS,
    Rejected,
    Source,
    decode_value,
    parse,
    sink_dead_letter,
)
from pipelines.sink.writer import ClickHouseUnavailable, Writer

log = structlog.get_logger(__name__)

# insert order: events, then statuses, then dead letters (failures add to them), then reconcile

# `flow_class` header value -> table, for routing flows without decoding their value (jsonflows.py)
_HEADER_TABLE = {cls.encode(): table for table, classes in FLOW_CLASSES_BY_TABLE.items() for cls in classes}
_FLOW_SPECS = {spec.name: spec for spec in FLOW_TABLES}
# poll timeout (ms) while the sink holds rows waiting for the writer thread (see Sink._ready)
HOLD_POLL_MS = 10


_FLOW_CLASS_KEY = b'"flow_class":"'


def header_table(headers) -> str | None:
    """The flow table named by a message's `flow_class` header (None: no or unknown header)."""
    for k, v in headers or ():
        if k == "flow_class":
            return _HEADER_TABLE.get(v)
    return None


def value_table(value: bytes | None) -> str | None:
    """The flow table named by the `"flow_class":"..."` key of a raw value (None: not found as such).

    WHY not the header: confluent-kafka's Message.headers() builds the header list on every call and
    measured as costly as fetching the message. The byte scan is only a routing hint: the JSON path
    accepts a payload only without backslashes (so a quote in the bytes always delimits a string and
    the key cannot be faked inside a string value), ClickHouse refuses duplicate and unknown keys, and
    its SQL checks each row's flow_class against the table, so a wrong hint sends the batch to the
    exact path, never a row to the wrong table.
    """
    if not value:
        return None
    i = value.find(_FLOW_CLASS_KEY)
    if i < 0:
        return None
    i += len(_FLOW_CLASS_KEY)
    return _HEADER_TABLE.get(value[i:value.find(b'"', i)])


_KEYED_TABLE = {_FLOW_CLASS_KEY + cls: table for cls, table in _HEADER_TABLE.items()}


def route_flows(recs: list, values: list) -> dict[str | None, list]:
    """Records grouped by value_table() of their values (None: not routable, for the exact path),
    each group in the order of `recs`.

    The same answer as calling value_table per message, computed with C-level map/compress passes:
    per-message Python frames cost more than the byte scans themselves at 50k messages a batch.
    """
    if None in values:      # a tombstone: bytes methods would raise on it; rare, so the simple loop
        out: dict[str | None, list] = {}
        for r, v in zip(recs, values, strict=True):
            out.setdefault(value_table(v), []).append(r)
        return out
    pos = list(map(bytes.find, values, repeat(_FLOW_CLASS_KEY)))      # -1: no key
    ends = map(bytes.find, values, repeat(b'"'), map(add, pos, repeat(len(_FLOW_CLASS_KEY))))
    # value[pos:end] is '"flow_class":"<class>' when the key is there; from pos -1 it is at most the
    # last byte, which matches no table
    tables = list(map(_KEYED_TABLE.get, map(bytes.__getitem__, values, map(slice, pos, ends))))
    out = {}
    for name in {*tables}:
        sel = map(is_, tables, repeat(None)) if name is None else map(eq, tables, repeat(name))
        out[name] = list(compress(recs, sel))
    return out

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
    carried_reconciles: int = 0  # writes that left their reconciliation (and commit) to a later one
    hole_refetches: int = 0      # fetches that skipped offsets and were read again (gaps.py) ...
    offsets_skipped: int = 0     # ... and offsets given up on after retrying (reported as errors)
    json_rows: int = 0           # flow rows parsed and inserted by ClickHouse (jsonflows.py) ...
    json_refused: int = 0        # ... and table groups it refused (those went the exact path)
    # where the time goes (seconds): Kafka fetch, message -> row, ClickHouse writes, offset commits
    poll_seconds: float = 0.0
    parse_seconds: float = 0.0
    write_seconds: float = 0.0
    commit_seconds: float = 0.0
    # perf_counter of the first record fetched and of the last commit: the span benchmarks divide by
    # (it leaves out connecting, migrating and the group join, which happen once per process)
    first_fetch_at: float = 0.0
    last_commit_at: float = 0.0


@dataclass
class Batch:
    """Messages waiting for one flush, with the next offset to commit per partition.

    Flow events are kept as raw records per table and Kafka partition when ClickHouse parses them
    (`raw`, jsonflows.py), else as decoded dicts per target table turned into validated columns at
    flush time (columns.flow_columns); the other topics are small and become rows right away.
    """

    rows: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    sources: dict[str, list[Source]] = field(default_factory=lambda: defaultdict(list))
    flows: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    flow_sources: dict[str, list[Source]] = field(default_factory=lambda: defaultdict(list))
    raw: dict[str, dict[TopicPartition, list]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    # per raw instruction record (same order as raw["instructions"][tp]): its slot when it may take the
    # ClickHouse path, else None (jsoninstructions.eligible, computed at fetch time)
    raw_slots: dict[TopicPartition, list] = field(default_factory=lambda: defaultdict(list))
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    count: int = 0
    started: float = 0.0

    def _tick(self) -> None:
        if not self.count:
            self.started = time.monotonic()
        self.count += 1

    def add(self, spec: TableSpec, row: tuple, src: Source) -> None:
        self._tick()
        self.rows[spec.name].append(row)
        self.sources[spec.name].append(src)

    def add_flow(self, spec: TableSpec, event: dict, src: Source) -> None:
        self._tick()
        self.flows[spec.name].append(event)
        self.flow_sources[spec.name].append(src)

    def add_raw(self, table: str, tp: TopicPartition, records: list) -> None:
        if not self.count:
            self.started = time.monotonic()
        self.count += len(records)
        self.raw[table][tp].extend(records)


@dataclass
class Written:
    """What one successful write did; turned into metrics only after the offsets are committed."""

    rows: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)          # table -> rows ClickHouse refused
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (stage, reason) found at flush
    slots: list[tuple[int, int]] = field(default_factory=list)     # slot ranges of inserted events
    json_rows: int = 0
    json_refused: int = 0
    reconciled: bool = True      # False: the write left its reconciliation to a later one (Sink._reconcile_or_carry)


def slot_ranges(slots: list[int], sources: list[Source]) -> list[tuple[int, int]]:
    """Slot range per source partition. One range over the whole batch could span the history
    between a replaying partition and a live one, and reconciliation reads the rows of its ranges."""
    by: dict[tuple[str, int], tuple[int, int]] = {}
    for slot, src in zip(slots, sources, strict=True):
        key = (src.topic, src.partition)
        lo_hi = by.get(key)
        by[key] = (slot, slot) if lo_hi is None else (min(lo_hi[0], slot), max(lo_hi[1], slot))
    return list(by.values())


def merge_ranges(ranges: list[tuple[int, int]], gap: int = 1000) -> list[tuple[int, int]]:
    """Union of slot ranges; ranges closer than `gap` slots are joined (fewer, still narrow reads)."""
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def row_slots(spec: TableSpec, rows: list[tuple]) -> list[int]:
    i = spec.index("slot")
    return [r[i] for r in rows]


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
        self._consumer = None      # consumer.ConfluentSource | consumer.KafkaPythonSource
        self._codec = KafkaPythonSource   # reads records of the consumer in use (the writer thread too)
        self._batch = Batch()
        self._committed: dict[TopicPartition, int] = {}
        self._stop = threading.Event()
        self._flushing = False
        self._drained = False      # the last poll returned fewer records than asked: nothing more queued
        self._inflow = InflowMeter(config.bulk_rate)
        self._gaps = OffsetGaps()
        self._metrics_server = None
        self._pool: ThreadPoolExecutor | None = None
        self._flush_pool: ThreadPoolExecutor | None = None
        self._pending: tuple[Batch, float, Future] | None = None   # the batch being written, not committed
        # Writes whose reconciliation was left to a later write (_reconcile_or_carry): their slot ranges,
        # and the offsets they hold back (committed once those ranges are reconciled).
        self._carried: list[tuple[int, int]] = []
        self._held: dict[TopicPartition, int] = {}
        self._reconciled_at = 0.0
        # Set while the sink holds nothing unflushed and every assigned partition is at its high
        # watermark; an in-process caller (depinflow run --until-caught-up) waits on it instead of
        # restarting a consumer (a group re-join costs seconds on the embedded broker).
        self.idle = threading.Event()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect to ClickHouse (retrying), apply migrations, join the consumer group."""
        if self._consumer is not None:
            return
        if self.config.metrics_port is not None and self._metrics_server is None:
            self._metrics_server = self.metrics.serve(self.config.metrics_port, self.config.metrics_host)
        self._with_retry(self._ensure_writer)
        cfg = self.config
        self._consumer = open_source(cfg.kafka_client, cfg.bootstrap, cfg.group_id, cfg.client_id,
                                     cfg.max_poll_records, cfg.consumer_overrides, cfg.confluent_overrides,
                                     cfg.assignment, stop=self._stop)
        self._codec = type(self._consumer)
        self._consumer.subscribe(list(self.kinds), on_assign=self._on_assigned, on_revoke=self._on_revoked,
                                 on_lost=self._on_lost)
        log.info("sink_started", bootstrap=self.config.bootstrap, group=self.config.group_id,
                 kafka_client=self._consumer.name,
                 topics=list(self.kinds), clickhouse=redact_dsn(self.config.clickhouse_dsn),
                 database=self.config.database)

    def close(self) -> None:
        """Leave the group without committing anything not yet flushed (it will be re-read)."""
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                log.warning("sink_consumer_close_failed", error=str(exc))
            self._consumer = None
        if self._flush_pool is not None:   # a write in flight finishes; its offsets stay uncommitted
            self._flush_pool.shutdown(wait=True)
            self._flush_pool = None
        self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
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
                got = self._poll_once()
                self._flush_or_settle(got)
                self._reconcile_held_if_quiet()
                if not got and not self._batch.count and self._pending is None and not self._held \
                        and self._caught_up():
                    self.idle.set()
                else:
                    self.idle.clear()
            self._settle()
            self._flush()
            self._reconcile_held()
        except SinkStopped:
            self.stats.abandoned_batches += 1
        except BrokerWaitStopped:       # stopped before the broker ever answered: nothing was read
            pass
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
                self._flush_or_settle(got)
                self._reconcile_held_if_quiet()
                if got or self._batch.count or self._pending is not None or self._held or not self._caught_up():
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
        asked = max(1, min(self.config.max_poll_records, room))
        # holding rows that wait only for the writer: look again soon, so they go out as it is free (not
        # with kafka-python, whose poll also runs the group coordinator and the fetches in this thread)
        timeout = self.config.poll_timeout_ms
        if self._batch.count and self._codec is not KafkaPythonSource:
            timeout = min(timeout, HOLD_POLL_MS)
        t0 = time.perf_counter()
        records = self._consumer.poll(asked, timeout)
        t1 = time.perf_counter()
        n = 0
        json_path = self._json_flows
        for tp, recs in records.items():
            recs = self._without_holes(tp, recs)
            if not recs:
                continue
            kind = self.kinds[tp.topic]
            if kind == KIND_FLOW and json_path:
                self._add_raw_flows(tp, recs)
            elif kind == KIND_INSTRUCTION and json_path:     # parsed by ClickHouse at flush (jsoninstructions)
                # eligibility here, not in the writer thread: the writer is the critical path while
                # this thread mostly waits for it, and ClickHouse's insert of the previous batch runs
                # without the GIL meanwhile
                self._batch.raw_slots[tp].extend(jsoninstructions.eligible(self._codec.values(recs)))
                self._batch.add_raw(INSTRUCTIONS.name, tp, recs)
            else:
                for r in recs:
                    self._add(kind, tp, r)
            n += len(recs)
            self.metrics.messages.labels(tp.topic).inc(len(recs))
            self._batch.offsets[tp] = self._codec.next_offset(recs)
        self._drained = n < asked
        self.stats.messages += n
        if n:
            self._inflow.record(t1, n)
            if not self.stats.first_fetch_at:
                self.stats.first_fetch_at = t1
            self.stats.poll_seconds += t1 - t0
            self.stats.parse_seconds += time.perf_counter() - t1
        return n

    def _without_holes(self, tp: TopicPartition, recs: list) -> list:
        """The records up to a hole in the partition's offsets; from the hole on, fetch again (gaps.py)."""
        codec = self._codec
        verdict = self._gaps.check(tp, lambda: [codec.offset(r) for r in recs], codec.offset(recs[0]),
                                   codec.offset(recs[-1]), len(recs))
        if verdict.skipped is not None:
            hole = verdict.skipped
            self.stats.offsets_skipped += hole.end - hole.start
            self.metrics.offsets_skipped.labels(tp.topic, str(tp.partition)).inc(hole.end - hole.start)
            log.error("sink_offsets_skipped", topic=tp.topic, partition=tp.partition, start=hole.start,
                      end=hole.end, why="still missing after refetching; deleted by retention, or not dense")
        if verdict.seek_to is not None:
            self.stats.hole_refetches += 1
            log.warning("sink_offset_hole_refetch", topic=tp.topic, partition=tp.partition, offset=verdict.seek_to)
            self._consumer.seek(tp, verdict.seek_to)
        return recs if verdict.keep == len(recs) else recs[:verdict.keep]

    @property
    def _json_flows(self) -> bool:
        return self.config.json_flows and is_embedded(self.config.clickhouse_dsn)

    def _add_raw_flows(self, tp: TopicPartition, recs: list) -> None:
        """Route flows by the `flow_class` in their raw value (value_table), undecoded; not found:
        the decoding path."""
        for table, rs in route_flows(recs, self._codec.values(recs)).items():
            if table is None:
                for r in rs:
                    self._add(KIND_FLOW, tp, r)
            else:
                self._batch.add_raw(table, tp, rs)

    def _add(self, kind: str, tp: TopicPartition, rec) -> None:
        r = self._codec.record(rec)
        src = Source(tp.topic, tp.partition, r.offset, r.timestamp, r.key, r.value, r.headers)
        try:
            if kind == KIND_FLOW:       # validated column-wise at flush (columns.flow_columns)
                event = decode_value(r.value)
                self._batch.add_flow(flow_table(str(event.get("flow_class"))), event, src)
                return
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
        self._log_dead(src, stage, reason, detail)

    @staticmethod
    def _log_dead(src: Source, stage: str, reason: str, detail: str) -> None:
        log.warning("sink_dead_letter", stage=stage, reason=reason, topic=src.topic,
                    partition=src.partition, offset=src.offset, detail=detail[:300])

    def _due(self) -> bool:
        """Full, or old: batch_seconds, or BULK_BATCH_SECONDS while a backfill streams in (inflow.py)."""
        b = self._batch
        if b.count >= self.config.batch_rows:
            return True
        if not b.count:
            return False
        age = time.monotonic() - b.started
        if age < self.config.batch_seconds:
            return False
        return age >= BULK_BATCH_SECONDS or not self._inflow.streaming(time.perf_counter())

    def _ready(self) -> bool:
        """Write the batch now: it is due (full or old), or the sink has read everything its partitions
        hold (caught up with their high watermarks) and the writer is free.

        WHY the second: waiting for batch_seconds when nothing more is there to batch is pure lag
        (live traffic is a few hundred rows a second). Batches stay large when they can: while a write
        runs, what arrives meanwhile forms the next batch, and a sink behind its topics batches by
        batch_rows / batch_seconds as before. Caught up, not merely a short poll: kafka-python hands
        out a backlog in small polls, and writing each (~0.2 s of fixed cost) made a crash-suite
        drain of a few thousand messages take minutes. Not while a backfill streams in (InflowMeter):
        a sink that keeps up with a fast listener is caught up after every poll, and writing then
        paid the fixed cost per statement for every few thousand rows."""
        if not self._batch.count:
            return False
        if self._due():
            return True
        if not self._drained or (self._pending is not None and not self._pending[2].done()):
            return False
        return not self._inflow.streaming(time.perf_counter()) and self._caught_up()

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
    def _flush_or_settle(self, got: int) -> None:
        """Hand a ready batch (_ready) to the writer thread and keep polling; with nothing polled,
        finish the write in flight (commit its offsets). Only with the ClickHouse JSON path, whose
        write runs mostly outside the GIL: the Python column path in a thread contends with the
        fetch for the GIL and measured slower (about 10.7k instead of 14.8k rows/s end to end)."""
        if not self._json_flows:
            if self._ready():
                self._flush()
            return
        if self._ready():
            self._flush_async()
        elif not got:
            self._settle()

    def _flush_async(self) -> None:
        """Write the batch in the writer thread while the next one is fetched (chdb and the HTTP client
        release the GIL). Offsets are still committed only after the write succeeded (_settle), from
        this thread: the Kafka consumer is never touched by the writer thread."""
        self._settle()
        batch = self._batch
        if not batch.offsets:
            return
        self._batch = Batch()
        self._pending = (batch, time.perf_counter(), self._flush_executor().submit(self._write, batch))

    def _settle(self, retry: bool = True) -> None:
        """Wait for the write in flight; commit it, or retry it here when ClickHouse was unavailable
        (with retry=False, as in a rebalance, the error is raised and the batch dropped uncommitted)."""
        if self._pending is None:
            return
        batch, started, future = self._pending
        self._pending = None
        try:
            written = future.result()
        except ClickHouseUnavailable:
            if not retry:
                raise
            self._flushing = True
            try:
                written = self._with_retry(lambda: self._write(batch))
            finally:
                self._flushing = False
            if written is None:            # abandoned in a rebalance while retrying: re-read by the owner
                return
        t_commit = time.perf_counter()
        self.stats.write_seconds += t_commit - started
        self._commit_written(batch.offsets, written)
        self.stats.commit_seconds += time.perf_counter() - t_commit
        self._record(written, time.perf_counter() - started)

    def _flush_executor(self) -> ThreadPoolExecutor:
        if self._flush_pool is None:
            self._flush_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-flush")
        return self._flush_pool

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
        t_commit = time.perf_counter()
        self.stats.write_seconds += t_commit - started
        self._commit_written(batch.offsets, written)
        self.stats.commit_seconds += time.perf_counter() - t_commit
        self._batch = Batch()
        elapsed = time.perf_counter() - started
        self._record(written, elapsed)

    def _commit_written(self, offsets: dict[TopicPartition, int], written: Written) -> None:
        """Commit a written batch's offsets, with those held back before it, once its rows are reconciled;
        a write that left its reconciliation to a later one holds its offsets until then."""
        offsets = {**self._held, **offsets}
        if not written.reconciled:
            self._held = offsets
            self.stats.carried_reconciles += 1
            return
        self._held = {}
        self._commit(offsets)

    def _reconcile_or_carry(self, writer: Writer, batch: Batch, slots: list[tuple[int, int]]) -> bool:
        """Reconcile the batch's slot ranges with those carried from earlier writes, or carry them on.

        WHY carry: the reconciliation (a status count and an INSERT ... SELECT per versioned table) was
        half of a live write's engine CPU (~100-140 ms of ~250), paid every few hundred ms while the next
        batch waited for the writer. It is left to a later write only while rows are waiting for this
        writer, and for at most `reconcile_seconds` since the last one; the offsets of such writes are
        committed only when their ranges are reconciled (_commit_written), so a crash re-reads them and
        the re-read reconciles (nothing committed is ever unreconciled). A reader may see a row's
        confirmed version up to `reconcile_seconds` longer after its finalized status is in."""
        ranges = merge_ranges([*self._carried, *slots])
        waiting = self._batch is not batch and self._batch.count > 0
        if waiting and time.monotonic() - self._reconciled_at < self.config.reconcile_seconds:
            self._carried = ranges
            return False
        self._reconcile_now(writer, ranges)
        return True

    def _reconcile_now(self, writer: Writer, ranges: list[tuple[int, int]]) -> None:
        """Reconcile `ranges` (which cover every carried one) and start the next carry window."""
        self._reconcile(writer, ranges)
        self._carried = []
        self._reconciled_at = time.monotonic()

    def _reconcile_held_if_quiet(self) -> None:
        """Nothing waits for the writer: reconcile what earlier writes carried and commit their offsets."""
        if self._held and self._pending is None and not self._batch.count:
            self._reconcile_held()

    def _reconcile_held(self, retry: bool = True) -> None:
        if not self._held and not self._carried:
            return
        writer = self._ensure_writer()

        def reconcile() -> bool:
            self._reconcile_now(writer, merge_ranges(self._carried))
            return True

        if not (self._with_retry(reconcile) if retry else reconcile()):
            return                          # abandoned in a rebalance while retrying
        held, self._held = self._held, {}
        if held:
            self._commit(held)

    def _record(self, written: Written, elapsed: float) -> None:
        for table, n in written.refused.items():
            self.metrics.insert_errors.labels(table, "row").inc(n)
            self.metrics.dead_letters.labels("sink.insert", "insert_failed").inc(n)
            self.stats.dead_letters += n
        for stage, reason in written.rejected:
            self.metrics.dead_letters.labels(stage, reason).inc()
            self.stats.dead_letters += 1
        total = sum(written.rows.values())
        self.metrics.batch_seconds.observe(elapsed)
        self.metrics.batch_rows.observe(total)
        for table, n in written.rows.items():
            self.metrics.rows.labels(table).inc(n)
            self.metrics.rows_per_second.labels(table).set(n / elapsed if elapsed > 0 else 0)
            self.stats.rows[table] += n
        self.stats.batches += 1
        self.stats.json_rows += written.json_rows
        self.stats.json_refused += written.json_refused
        log.info("sink_batch_committed", rows=total, seconds=round(elapsed, 4), tables=dict(written.rows))

    def _write(self, batch: Batch) -> Written:
        """Insert everything in the batch and reconcile commitments. Idempotent: safe to repeat.

        Counts of refused/rejected messages are returned, not recorded: they become metrics once the
        batch is committed, so a retried batch is not counted twice."""
        writer = self._ensure_writer()
        out = Written()
        dead_rows = list(batch.rows.get(DEAD_LETTERS.name, ()))
        dead_sources = list(batch.sources.get(DEAD_LETTERS.name, ()))

        def refuse(spec: TableSpec, failed) -> None:
            for f in failed:
                dead_rows.append(sink_dead_letter(f.source, "sink.insert", f.reason, f.detail))
                dead_sources.append(f.source)
            if failed:
                out.refused[spec.name] = len(failed)

        flows = {name: list(events) for name, events in batch.flows.items()}
        flow_sources = {name: list(srcs) for name, srcs in batch.flow_sources.items()}
        other_rows = {spec.name: list(batch.rows.get(spec.name, ())) for spec in (INSTRUCTIONS, COMMITMENT_STATUS)}
        other_sources = {spec.name: list(batch.sources.get(spec.name, ())) for spec in (INSTRUCTIONS, COMMITMENT_STATUS)}
        for name, groups in self._write_json(writer, batch, out):
            if name == INSTRUCTIONS.name:
                self._parse_raw_instructions(groups, other_rows[name], other_sources[name], dead_rows, dead_sources,
                                            out)
            else:
                self._decode_raw(groups, flows, flow_sources, dead_rows, dead_sources, out)
        slot_at = FLOW_TABLES[0].index("slot")
        for spec in FLOW_TABLES:
            events = flows.get(spec.name)
            if not events:
                continue
            sources = flow_sources[spec.name]
            cols, kept, rejected = flow_columns(events)
            for i, rej in rejected:
                self._reject(sources[i], rej.reason, rej.detail, dead_rows, dead_sources, out)
            if not kept:
                continue
            kept_sources = [sources[i] for i in kept] if rejected else sources
            refuse(spec, writer.insert_columns(spec, cols, kept_sources))
            out.rows[spec.name] = out.rows.get(spec.name, 0) + len(kept) - out.refused.get(spec.name, 0)
            out.slots.extend(slot_ranges(cols[slot_at], kept_sources))
        for spec in (INSTRUCTIONS, COMMITMENT_STATUS):
            spec_rows = other_rows[spec.name]
            if not spec_rows:
                continue
            refuse(spec, writer.insert(spec, spec_rows, other_sources[spec.name]))
            out.rows[spec.name] = out.rows.get(spec.name, 0) + len(spec_rows) - out.refused.get(spec.name, 0)
        if dead_rows:
            out.rows[DEAD_LETTERS.name] = self._write_dead_letters(writer, dead_rows, dead_sources)
        for spec in (INSTRUCTIONS, COMMITMENT_STATUS):
            out.slots.extend(slot_ranges(row_slots(spec, other_rows[spec.name]), other_sources[spec.name]))
        out.reconciled = self._reconcile_or_carry(writer, batch, out.slots)
        return out

    def _write_json(self, writer: Writer, batch: Batch, out: Written) -> list[tuple[str, list[list]]]:
        """Raw flows and instruction records through ClickHouse's JSON parser, one INSERT per table;
        returns (table, record groups) it refused (for the exact path). Instruction records that are
        not eligible one by one (jsoninstructions.eligible) are refused alone; the rest go on.

        A table's records fewer than `json_min_rows` take the exact path without asking ClickHouse:
        the JSON statement costs ~60-70 ms of engine CPU however few rows it has (its checks are
        planned per statement), the exact path ~15-25 ms for up to a few hundred rows (measured on
        chdb 4.4); live batches of tens of rows spent most of the sink's CPU there.

        The payload of the next table is built while ClickHouse inserts the previous one: chdb
        releases the GIL, so the two overlap on two cores. One worker: chdb runs one statement at a
        time anyway, and an exception (ClickHouseUnavailable) comes back through result().
        """
        refused: list[tuple[str, list[list]]] = []
        pending = None
        min_rows = self.config.json_min_rows

        def settle() -> None:
            nonlocal pending
            spec, groups, ranges, future = pending
            pending = None
            if not future.result():
                out.json_refused += 1
                refused.append((spec.name, groups))
                return
            n = sum(map(len, groups))
            out.rows[spec.name] = out.rows.get(spec.name, 0) + n
            out.json_rows += n
            out.slots.extend(ranges)

        values = self._codec.values
        # flow tables first: their rows are what live readers wait for (instructions are bulkier)
        for name, by_tp in sorted(batch.raw.items(), key=lambda item: item[0] == INSTRUCTIONS.name):
            groups = [recs for recs in by_tp.values() if recs]
            if not groups:
                continue
            if sum(map(len, groups)) < min_rows:    # small (live) group: the exact path costs less
                refused.append((name, groups))
                continue
            if name == INSTRUCTIONS.name:
                slots = [batch.raw_slots[tp] for tp, recs in by_tp.items() if recs]
                groups, data, ranges = self._instruction_payload(groups, slots, refused)
                if not groups:
                    continue
            else:
                data = jsonflows.payload([v for recs in groups for v in values(recs)])
                ranges = jsonflows.slot_hints(data, [len(g) for g in groups]) if data is not None else None
            if not ranges:
                out.json_refused += 1
                refused.append((name, groups))
                continue
            if pending is not None:     # this payload was built while the previous insert ran
                settle()
            spec = INSTRUCTIONS if name == INSTRUCTIONS.name else _FLOW_SPECS[name]
            future = self._executor().submit(writer.insert_json, spec, data, merge_ranges(ranges))
            pending = (spec, groups, ranges, future)
        if pending is not None:
            settle()
        return refused

    def _instruction_payload(self, groups: list[list], group_slots: list[list], refused: list
                             ) -> tuple[list[list], bytes | None, list[tuple[int, int]]]:
        """The eligible records of each group (`group_slots`: jsoninstructions.eligible of its records),
        their payload and slot range per group; the others are appended to `refused` as one group (the
        exact path parses them one by one)."""
        values = self._codec.values
        kept, left, parts, ranges = [], [], [], []
        for recs, slots in zip(groups, group_slots, strict=True):
            vals = values(recs)
            if None in slots:
                ok = list(map(is_not, slots, repeat(None)))
                left.extend(compress(recs, map(not_, ok)))
                recs, vals, slots = list(compress(recs, ok)), list(compress(vals, ok)), list(compress(slots, ok))
            if recs:
                kept.append(recs)
                parts.append(vals)
                ranges.append((min(slots), max(slots)))
        if left:
            refused.append((INSTRUCTIONS.name, [left]))
        if not kept:
            return [], None, []
        return kept, jsoninstructions.payload([v for vals in parts for v in vals]), ranges

    def _raw_sources(self, groups: list[list]):
        """Source of every raw record of the groups (the exact paths' view of a record)."""
        for recs in groups:
            for r in map(self._codec.record, recs):
                yield Source(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, r.headers)

    def _reject(self, src: Source, reason: str, detail: str, dead_rows: list, dead_sources: list,
                out: Written) -> None:
        """A raw record the exact path rejected at flush: a sink.parse dead letter of this batch."""
        dead_rows.append(sink_dead_letter(src, "sink.parse", reason, detail))
        dead_sources.append(src)
        out.rejected.append(("sink.parse", reason))
        self._log_dead(src, "sink.parse", reason, detail)

    def _parse_raw_instructions(self, groups: list[list], rows: list, sources: list, dead_rows: list,
                                dead_sources: list, out: Written) -> None:
        """The exact path for raw instruction records: rows.parse each, dead-letter what it rejects."""
        for src in self._raw_sources(groups):
            try:
                _spec, row = parse(KIND_INSTRUCTION, src)
            except Rejected as rej:
                self._reject(src, rej.reason, rej.detail, dead_rows, dead_sources, out)
            except Exception as exc:  # noqa: BLE001 - one odd message must never stop the partition
                self._reject(src, "parse_error", f"{type(exc).__name__}: {exc}", dead_rows, dead_sources, out)
            else:
                rows.append(row)
                sources.append(src)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-insert")
        return self._pool

    def _decode_raw(self, groups: list[list], flows: dict, flow_sources: dict, dead_rows: list,
                    dead_sources: list, out: Written) -> None:
        """The exact path for raw flows ClickHouse refused: decode each, route by its value."""
        for src in self._raw_sources(groups):
            try:
                event = decode_value(src.value)
            except Rejected as rej:
                self._reject(src, rej.reason, rej.detail, dead_rows, dead_sources, out)
                continue
            name = flow_table(str(event.get("flow_class"))).name
            flows.setdefault(name, []).append(event)
            flow_sources.setdefault(name, []).append(src)

    def _write_dead_letters(self, writer: Writer, rows: list[tuple], sources: list[Source]) -> int:
        failed = writer.insert(DEAD_LETTERS, rows, sources)
        if failed:  # an upstream dead letter ClickHouse refused: keep its raw bytes as a sink one
            fallback = [sink_dead_letter(f.source, "sink.insert", f.reason, f.detail) for f in failed]
            if writer.insert(DEAD_LETTERS, fallback, [f.source for f in failed]):
                raise ClickHouseUnavailable("dead_letters refuses even minimal rows")
        return len(rows)

    def _reconcile(self, writer: Writer, ranges: list[tuple[int, int]]) -> None:
        """Bring row versions in the batch's slot ranges (events and statuses) up to date."""
        for lo, hi in ranges:
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
                if self._batch is not batch:    # abandoned in a rebalance: nothing left to write
                    return None
                delay = min(delay * 2, self.config.retry_max_seconds)

    def _wait(self, seconds: float) -> None:
        """Sleep while keeping the group membership alive (paused partitions return no records)."""
        end = time.monotonic() + seconds
        consumer = self._consumer
        if consumer is None:
            self._stop.wait(seconds)
            return
        assigned = consumer.assignment()
        consumer.pause(assigned)
        try:
            while time.monotonic() < end and not self._stop.is_set():
                consumer.keep_alive(max(1, int(min(0.5, end - time.monotonic()) * 1000)))
        finally:
            consumer.resume(assigned)

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        self._gaps.forget(assigned)
        log.info("sink_partitions_assigned", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))

    def _on_lost(self, lost: list[TopicPartition]) -> None:
        """The group moved on without us (session timeout): another member may already own these
        partitions, so nothing fetched may be committed. The write in flight finishes (its rows are
        harmless duplicates for the new owner's re-read) and its offsets are dropped."""
        log.warning("sink_partitions_lost", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in lost))
        self._gaps.forget(lost)
        if self._pending is not None:
            _batch, _started, future = self._pending
            self._pending = None
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - dropped either way; the new owner re-reads it
                log.warning("sink_write_dropped", why="partitions lost", error=str(exc)[:300])
        self._held = {}        # written, not committed: re-read (and reconciled) by the new owner
        if self._batch.offsets:
            self._abandon("partitions lost")

    def _on_revoked(self, revoked) -> None:
        """Commit what we hold before losing the partitions; if we cannot, drop it uncommitted
        (positions restart from the committed offsets after the rebalance, so nothing is lost)."""
        self._gaps.forget(revoked)
        if not self._batch.offsets and self._pending is None and not self._held:
            return
        if self._flushing:
            self._abandon("rebalance during a ClickHouse outage")
            return
        try:
            self._settle(retry=False)
            self._flush(retry=False)
            self._reconcile_held(retry=False)
        except ClickHouseUnavailable as exc:
            self._abandon(f"rebalance: {exc}")

    def _abandon(self, why: str) -> None:
        log.warning("sink_batch_abandoned", why=why, rows=self._batch.count)
        self.stats.abandoned_batches += 1
        self._batch = Batch()
        self._held = {}     # uncommitted: re-read from the committed offsets, or covered by a later commit

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        owned = self._consumer.assignment()
        foreign = [tp for tp in offsets if tp not in owned]
        if foreign:   # never commit for a partition this member no longer owns (its new owner re-reads)
            log.warning("sink_commit_skipped_unowned", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in foreign))
            offsets = {tp: off for tp, off in offsets.items() if tp in owned}
            if not offsets:
                return
        for attempt in range(3):
            try:
                self._consumer.commit(offsets)
                break
            except CommitFailed as exc:
                log.warning("sink_commit_failed", attempt=attempt + 1, error=str(exc))
                if attempt == 2:  # rows are in ClickHouse; a re-read after restart is harmless
                    return
                time.sleep(0.2 * (attempt + 1))
        self.stats.commits += 1
        self.stats.last_commit_at = time.perf_counter()
        self._committed.update(offsets)
        self.metrics.last_commit.set(time.time())
        self._update_lag()

    def _update_lag(self) -> None:
        for tp, committed in self._committed.items():
            hw = self._consumer.highwater(tp)
            self.metrics.committed.labels(tp.topic, str(tp.partition)).set(committed)
            if hw is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, hw - committed))
