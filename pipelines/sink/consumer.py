"""The sink's Kafka consumer behind one small interface, on confluent-kafka (librdkafka) or kafka-python.

Why two: librdkafka fetches and decompresses in C threads and hands Python ready Message objects,
measured against the local tansu broker at ~7 us of process CPU per flow message (84k msg/s) against
~20 us (16k msg/s) for kafka-python, whose fetch was the largest cost of the sink. kafka-python stays
selectable (`kafka_client = "kafka-python"`) as the fallback the sink was proven with.

What the sink needs from either, and nothing more: a consumer group over its topics with rebalance
callbacks (revoked: settle and commit what was fetched; lost: drop it uncommitted), fetched records
grouped by partition in offset order, a synchronous commit of explicit offsets, pause/resume while
ClickHouse is away, and the partition's high watermark for lag. The high watermark is the one the
broker reports in fetch responses (librdkafka's cached watermark, kafka-python's highwater()):
tansu answers ListOffsets(latest) with the base offset of the newest batch + 1, which is wrong.

Two ways to get partitions (`assignment`): `group` subscribes, and the broker's group coordinator shares
the partitions among the group's members (scale out with more sinks); `manual` reads every partition of
the topics itself, starting from the group's committed offsets and committing under the same group id,
with no JoinGroup/SyncGroup at all. WHY manual: a single sink (the embedded `depinflow run`) does not
need a coordinator, starts reading in ~0.2 s instead of a ~6 s join, and cannot be left without
partitions by a coordinator stuck in a rebalance (seen with tansu after broker kills, BENCHMARKS.md).
Two manual sinks of one group would both read everything: harmless for the tables (event_id dedup) but
twice the work, so it is one sink per group id.

Records stay in the library's own type on the hot path (no per-message wrapper object); the sink
reads them through `values()` / `headers()` and builds a uniform `Record` only for the rare paths
(a record to dead-letter, a flow the JSON path refused).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from typing import Any

import structlog
from kafka import ConsumerRebalanceListener, TopicPartition

from pipelines.kafka.client import make_confluent_consumer, make_consumer, until_broker_reachable

log = structlog.get_logger(__name__)
_VALUE = attrgetter("value")

Partitions = Callable[[list[TopicPartition]], None]
Lookup = Callable[[list[str]], Mapping[str, Iterable[int]]]   # topics -> each one's partition ids
ASSIGNMENTS = ("group", "manual")   # how the sink gets its partitions (module doc)

# How long the broker may hold a fetch that has no new data (the clients' default is 500 ms). WHY lower:
# tansu does not answer a waiting fetch when a record arrives, only when the wait is over, so this wait
# is live lag (measured with librdkafka against tansu: record produced -> consumed p50 144 ms / max 262 ms
# at the default, 3 ms / 12 ms at 10 ms). Cost: an idle consumer fetches 1000/FETCH_WAIT_MS times a
# second (tansu idle CPU, 16 partitions, loaded machine: ~1 % of a core at 500 ms, ~7 % at 50, ~19 %
# at 10). A broker that answers as soon as data arrives (Apache Kafka) is unaffected either way.
# Overridable: [kafka.confluent] "fetch.wait.max.ms"; kafka-python keeps its 500 ms ([kafka.consumer]
# fetch_max_wait_ms): with 50 its crash-suite drain (group, kill -9s) did not finish in 60 s.
FETCH_WAIT_MS = 50


class CommitFailed(RuntimeError):
    """The broker refused an offset commit (the rows are in ClickHouse; a re-read is harmless)."""


@dataclass(slots=True)
class Record:
    """One message in the shape the sink's rare paths read (kafka-python's ConsumerRecord has it too)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None


class ManualPartitions:
    """Which partitions of the topics a manual-assignment sink has taken, and when to look for new ones.

    WHY re-check: the sink may start before the listener created its topics, and an operator may add
    partitions; a group member learns both from a rebalance, a manual one only by looking. WHY sooner
    while a topic has no partition yet: a sink started beside a new listener (`depinflow run`, a first
    backfill) otherwise read nothing for up to RECHECK_SECONDS after the topics appeared (measured: the
    end-to-end bench's sink sat 10 s idle, then loaded the whole backlog in 2.7 s)."""

    RECHECK_SECONDS = 10.0
    MISSING_RECHECK_SECONDS = 0.5

    def __init__(self, topics: list[str]) -> None:
        self.topics = list(topics)
        self.taken: set[TopicPartition] = set()
        self._next_check = 0.0
        self._missing_wait = self.MISSING_RECHECK_SECONDS

    def due(self, now: float) -> bool:
        return now >= self._next_check

    def new(self, partitions_of: Lookup, now: float) -> list[TopicPartition]:
        """Partitions that exist now and are not taken yet (marked taken), in topic/partition order.
        `partitions_of(topics)` answers for every topic with one metadata lookup."""
        self._next_check = now + self.RECHECK_SECONDS     # a failed lookup: look again after the long wait
        known = partitions_of(self.topics)
        found = [TopicPartition(t, p) for t in self.topics for p in sorted(known[t])]
        fresh = [tp for tp in found if tp not in self.taken]
        self.taken.update(fresh)
        if self.missing():       # doubling up to the long wait: a topic that never comes costs little
            self._next_check = now + self._missing_wait
            self._missing_wait = min(2 * self._missing_wait, self.RECHECK_SECONDS)
        return fresh

    def missing(self) -> list[str]:
        """Topics of which no partition is taken yet (not created yet, as far as this sink knows)."""
        have = {tp.topic for tp in self.taken}
        return [t for t in self.topics if t not in have]

    def take(self, partitions_of: Lookup, assign: Partitions, on_assign: Partitions) -> None:
        """Start reading the new partitions (`assign`, the client's own step), then tell the sink (`on_assign`);
        a lookup that fails (broker away) is logged and made again at the next check."""
        try:
            fresh = self.new(partitions_of, time.monotonic())
        except Exception as exc:  # noqa: BLE001 - broker away: look again at the next check
            log.warning("sink_partition_lookup_failed", error=str(exc))
            return
        if fresh:
            assign(fresh)
            log.info("sink_partitions_taken", assignment="manual", partitions=len(fresh))
            on_assign(fresh)


def confluent_available() -> bool:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_client(name: str) -> str:
    """`auto` -> confluent when installed, else kafka-python."""
    if name == "auto":
        return "confluent" if confluent_available() else "kafka-python"
    return name


class ConfluentSource:
    """librdkafka consumer. Callbacks (assign, revoke, lost) run inside poll(), on the caller's thread."""

    name = "confluent"

    def __init__(self, bootstrap: str, group_id: str, client_id: str, overrides: dict[str, Any],
                 manual: bool = False) -> None:
        self.consumer = make_confluent_consumer(bootstrap, group_id, **{"client.id": client_id, **overrides})
        self._manual_mode = manual
        self._manual: ManualPartitions | None = None      # set by subscribe() in manual mode
        self._on_assign: Partitions | None = None
        self._assigned: set[TopicPartition] = set()
        self._start: dict[TopicPartition, int] = {}        # committed offset at assignment (idle check)
        self._positions: dict[TopicPartition, int] = {}    # next offset after the last record handed out
        self._rewind: dict[TopicPartition, int] = {}       # records returned while paused: fetch again

    def subscribe(self, topics: list[str], on_assign: Partitions, on_revoke: Partitions, on_lost: Partitions) -> None:
        if self._manual_mode:      # no group membership: take every partition (module doc)
            self._manual = ManualPartitions(topics)
            self._on_assign = on_assign
            self._manual.take(self._partitions_of, self._assign_more, on_assign)
            return

        def assigned(consumer, parts) -> None:
            self._remember_assigned(parts)
            on_assign([TopicPartition(p.topic, p.partition) for p in parts])

        def revoked(consumer, parts) -> None:
            tps = [TopicPartition(p.topic, p.partition) for p in parts]
            try:
                on_revoke(tps)
            finally:
                self._forget(tps)

        def lost(consumer, parts) -> None:
            tps = [TopicPartition(p.topic, p.partition) for p in parts]
            try:
                on_lost(tps)
            finally:
                self._forget(tps)

        self.consumer.subscribe(topics, on_assign=assigned, on_revoke=revoked, on_lost=lost)

    def _remember_assigned(self, parts: list) -> None:
        """Note partitions now owned and where the group left off in each (for the idle check)."""
        self._assigned.update(TopicPartition(p.topic, p.partition) for p in parts)
        try:
            for p in self.consumer.committed(parts, timeout=30):
                self._start[TopicPartition(p.topic, p.partition)] = p.offset
        except Exception as exc:  # noqa: BLE001 - only the idle check uses it
            log.warning("sink_committed_lookup_failed", error=str(exc))

    def _partitions_of(self, topics: list[str]) -> dict[str, list[int]]:
        known = self.consumer.list_topics(timeout=10).topics   # all topics at once: never auto-creates one
        return {t: [] if (meta := known.get(t)) is None or meta.error is not None else list(meta.partitions)
                for t in topics}

    def _assign_more(self, fresh: list[TopicPartition]) -> None:
        """Manual assignment: start reading `fresh` too, each from the group's committed offset (librdkafka's
        default for an assignment without an offset), else from the earliest."""
        from confluent_kafka import TopicPartition as CTP

        parts = [CTP(tp.topic, tp.partition) for tp in fresh]
        self.consumer.incremental_assign(parts)
        self._remember_assigned(parts)

    def _forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._assigned.discard(tp)
            self._start.pop(tp, None)
            self._positions.pop(tp, None)
            self._rewind.pop(tp, None)

    def poll(self, max_records: int, timeout_ms: int) -> dict[TopicPartition, list]:
        """Records by partition, each list in offset order."""
        from confluent_kafka import Message

        if self._manual is not None and self._manual.due(time.monotonic()):
            self._manual.take(self._partitions_of, self._assign_more, self._on_assign)
        msgs = self._fetch(max(1, max_records), timeout_ms / 1000)
        if any(map(Message.error, msgs)):       # errors come as messages; none in normal operation
            for m in msgs:
                if m.error() is not None:
                    log.warning("sink_fetch_error", error=str(m.error()))
            msgs = [m for m in msgs if m.error() is None]
        # consecutive runs per topic, then per partition: C-level passes instead of 3 calls a message
        out: dict[TopicPartition, list] = {}
        for topic, run in groupby(msgs, Message.topic):
            for partition, part_run in groupby(run, Message.partition):
                out.setdefault(TopicPartition(topic, partition), []).extend(part_run)
        for tp, recs in out.items():
            self._positions[tp] = recs[-1].offset() + 1
        return out

    def _fetch(self, max_records: int, timeout: float) -> list:
        """What librdkafka has fetched, at once; if nothing, the first message to arrive within `timeout`
        and what came with it.

        WHY not consume(max_records, timeout) alone: librdkafka's batch consume returns only when it
        has `max_records` messages or the timeout has passed, so every live poll waited the whole
        poll timeout (200 ms of lag per poll, measured p50 ~130 ms per message with a 1,000 batch)."""
        msgs = self.consumer.consume(num_messages=max_records, timeout=0)
        if msgs:
            return msgs
        first = self.consumer.poll(timeout)
        if first is None:
            return []
        return [first, *self.consumer.consume(num_messages=max_records - 1, timeout=0)] if max_records > 1 \
            else [first]

    @staticmethod
    def next_offset(recs: list) -> int:
        return recs[-1].offset() + 1

    @staticmethod
    def offset(rec) -> int:
        return rec.offset()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Fetch `tp` again from `offset` (librdkafka drops what it had fetched past it)."""
        from confluent_kafka import TopicPartition as CTP

        self.consumer.seek(CTP(tp.topic, tp.partition, offset))
        self._positions[tp] = offset

    @staticmethod
    def values(recs: Sequence) -> list[bytes | None]:
        from confluent_kafka import Message

        return list(map(Message.value, recs))

    @staticmethod
    def headers(rec) -> list[tuple[str, bytes]] | None:
        return rec.headers()

    @staticmethod
    def record(rec) -> Record:
        return Record(rec.topic(), rec.partition(), rec.offset(), rec.timestamp()[1], rec.key(), rec.value(),
                      rec.headers())

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka import TopicPartition as CTP

        parts = [CTP(tp.topic, tp.partition, off) for tp, off in offsets.items()]
        try:
            result = self.consumer.commit(offsets=parts, asynchronous=False)
        except KafkaException as exc:
            raise CommitFailed(str(exc)) from exc
        errors = [f"{p.topic}:{p.partition}: {p.error}" for p in result or () if p.error is not None]
        if errors:
            raise CommitFailed("; ".join(errors))

    def highwater(self, tp: TopicPartition) -> int | None:
        """The high watermark of the last fetch response (cached=True: no ListOffsets, see module doc)."""
        from confluent_kafka import TopicPartition as CTP

        try:
            _lo, hi = self.consumer.get_watermark_offsets(CTP(tp.topic, tp.partition), cached=True)
        except Exception:  # noqa: BLE001 - unknown partition state
            return None
        return hi if hi is not None and hi >= 0 else None

    def position(self, tp: TopicPartition) -> int:
        """Next offset to read: after the last record handed out, else where the group left off."""
        pos = self._positions.get(tp)
        if pos is not None:
            return pos
        start = self._start.get(tp, -1)
        return start if start >= 0 else 0

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        from confluent_kafka import TopicPartition as CTP

        parts = [CTP(tp.topic, tp.partition) for tp in tps]
        if parts:
            self.consumer.pause(parts)

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        from confluent_kafka import TopicPartition as CTP

        tps = [tp for tp in tps if tp in self._assigned]
        if not tps:
            return
        self.consumer.resume([CTP(tp.topic, tp.partition) for tp in tps])
        for tp in tps:       # records polled while paused were not used: read them again
            off = self._rewind.pop(tp, None)
            if off is not None:
                self.consumer.seek(CTP(tp.topic, tp.partition, off))
                self._positions[tp] = off

    def keep_alive(self, timeout_ms: int) -> None:
        """Serve callbacks (rebalance) while paused; a record that still arrives is fetched again later."""
        msg = self.consumer.poll(timeout_ms / 1000)
        if msg is not None and msg.error() is None:
            tp = TopicPartition(msg.topic(), msg.partition())
            self._rewind[tp] = min(self._rewind.get(tp, msg.offset()), msg.offset())

    def close(self) -> None:
        self.consumer.close()


class _Listener(ConsumerRebalanceListener):
    def __init__(self, on_assign: Partitions, on_revoke: Partitions) -> None:
        self._on_assign = on_assign
        self._on_revoke = on_revoke

    def on_partitions_revoked(self, revoked):
        self._on_revoke(list(revoked))

    def on_partitions_assigned(self, assigned):
        self._on_assign(list(assigned))


class KafkaPythonSource:
    """kafka-python consumer (the fallback). Its revoke callback also covers lost partitions: a
    commit from a member that left the generation is refused by the broker."""

    name = "kafka-python"

    def __init__(self, bootstrap: str, group_id: str, client_id: str, max_poll_records: int,
                 overrides: dict[str, Any], manual: bool = False, stop: threading.Event | None = None) -> None:
        self.consumer = until_broker_reachable(
            lambda: make_consumer(bootstrap, group_id, max_poll_records=max_poll_records, client_id=client_id,
                                  **overrides), "sink consumer", stop)
        self._manual_mode = manual
        self._manual: ManualPartitions | None = None      # set by subscribe() in manual mode
        self._on_assign: Partitions | None = None
        self._rewind: dict[TopicPartition, int] = {}

    def subscribe(self, topics: list[str], on_assign: Partitions, on_revoke: Partitions, on_lost: Partitions) -> None:
        if self._manual_mode:      # no group membership: take every partition (module doc)
            self._manual = ManualPartitions(topics)
            self._on_assign = on_assign
            self._manual.take(self._partitions_of, self._assign_more, on_assign)
            return
        self.consumer.subscribe(topics=topics, listener=_Listener(on_assign, on_revoke))

    def _partitions_of(self, topics: list[str]) -> dict[str, set[int] | None]:
        return {t: self.consumer.partitions_for_topic(t) for t in topics}   # from the client's cached metadata

    def _assign_more(self, fresh: list[TopicPartition]) -> None:
        """Manual assignment: assign every partition taken so far (kafka-python has no incremental assign);
        new ones start at the group's committed offset (it has a group id), else at the earliest; partitions
        already read keep their position."""
        self.consumer.assign(sorted(self._manual.taken))

    def poll(self, max_records: int, timeout_ms: int) -> dict[TopicPartition, list]:
        if self._manual is not None and self._manual.due(time.monotonic()):
            self._manual.take(self._partitions_of, self._assign_more, self._on_assign)
        return self.consumer.poll(timeout_ms=timeout_ms, max_records=max(1, max_records))

    @staticmethod
    def next_offset(recs: list) -> int:
        return recs[-1].offset + 1

    @staticmethod
    def offset(rec) -> int:
        return rec.offset

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Fetch `tp` again from `offset` (kafka-python discards fetched records past it)."""
        self.consumer.seek(tp, offset)

    @staticmethod
    def values(recs: Sequence) -> list[bytes | None]:
        return list(map(_VALUE, recs))

    @staticmethod
    def headers(rec) -> list[tuple[str, bytes]] | None:
        return rec.headers

    @staticmethod
    def record(rec) -> Record:
        return rec

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment())

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        try:
            self.consumer.commit(offsets={tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})
        except KafkaError as exc:
            raise CommitFailed(str(exc)) from exc

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.consumer.highwater(tp)

    def position(self, tp: TopicPartition) -> int:
        return self.consumer.position(tp)

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        self.consumer.pause(*tps)

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        assigned = self.consumer.assignment()
        self.consumer.resume(*[tp for tp in tps if tp in assigned])

    def keep_alive(self, timeout_ms: int) -> None:
        self.consumer.poll(timeout_ms=timeout_ms)   # paused partitions return no records

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def client_settings(client: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The sink's own consumer settings for `client` (confluent | kafka-python) under the user's overrides."""
    if client != "confluent":    # kafka-python keeps its default: a shorter wait slowed its drains (crash suite)
        return dict(overrides)
    return {"fetch.wait.max.ms": FETCH_WAIT_MS, **overrides}


def open_source(client: str, bootstrap: str, group_id: str, client_id: str, max_poll_records: int,
                kafka_python_overrides: dict[str, Any], confluent_overrides: dict[str, Any],
                assignment: str = "group", stop: threading.Event | None = None):
    """The consumer for `client` (auto | confluent | kafka-python) and `assignment` (group | manual).
    kafka-python's waits for an unreachable broker until `stop` (librdkafka reconnects by itself)."""
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}")
    manual = assignment == "manual"
    name = resolve_client(client)
    if name == "confluent":
        return ConfluentSource(bootstrap, group_id, client_id, client_settings(name, confluent_overrides), manual)
    if name == "kafka-python":
        return KafkaPythonSource(bootstrap, group_id, client_id, max_poll_records,
                                 client_settings(name, kafka_python_overrides), manual, stop)
    raise ValueError(f"unknown kafka client {client!r}")
