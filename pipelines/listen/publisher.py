"""Kafka sends with per-transaction acknowledgement tracking, bridged into asyncio.

WHY per transaction: the checkpoint may only pass a transaction once every one of its messages is
acknowledged (acks=all). kafka-python acknowledges in its I/O thread, one future per message; this
module counts them down per transaction and wakes the event loop once per burst of completions
(not once per message), which matters at thousands of transactions per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from indexer.sources.types import Delivery
from pipelines.kafka.messages import OutMessage

if TYPE_CHECKING:
    from kafka import KafkaProducer

# kafka-python is imported by KafkaPublisher itself, not here: a listener on confluent-kafka never uses
# it and importing it costs ~0.3 CPU-s of start-up (pipelines.kafka.client).

# How often the event loop serves librdkafka's delivery reports while messages are outstanding.
POLL_INTERVAL = 0.005

CONFLUENT_DEFAULTS: dict[str, object] = {
    "acks": "all",                      # acknowledged only when the broker has it durably
    "compression.type": "lz4",
    "linger.ms": 5,                     # live: latency first (backfill: BACKFILL_OVERRIDES)
    "batch.size": 1024 * 1024,
    "batch.num.messages": 100_000,
    "message.max.bytes": 8 * 1024 * 1024,
    # the same partition for a key as Kafka's default partitioner (Java, kafka-python): murmur2,
    # computed in C instead of hashing every key in Python
    "partitioner": "murmur2_random",
    "enable.idempotence": False,        # tansu cannot InitProducerId; event_id dedup instead
    "max.in.flight.requests.per.connection": 5,
    "message.send.max.retries": 10,
    "retry.backoff.ms": 200,
    "delivery.timeout.ms": 120_000,
    "queue.buffering.max.messages": 500_000,
}


# The backfill's own producer (see KafkaProcessor.process_batch). WHY 50 ms: the broker's CPU is per
# request much more than per message; at backfill rates linger 5 ms cost ~100 us of broker CPU per
# transaction, 50 ms ~27 us (bench/listen.py --producer linger.ms=...), while live traffic keeps 5 ms.
BACKFILL_OVERRIDES: dict[str, object] = {"linger.ms": 50}


class _Countdown:
    __slots__ = ("remaining", "future", "started", "error", "lock")

    def __init__(self, n: int, future: asyncio.Future) -> None:
        self.remaining = n
        self.future = future
        self.started = time.perf_counter()
        self.error: BaseException | None = None
        self.lock = threading.Lock()


class KafkaPublisher:
    """Submit message groups; each group's Delivery resolves when all its messages are acknowledged."""

    def __init__(self, producer: KafkaProducer, loop: asyncio.AbstractEventLoop,
                 on_latency: Callable[[float], None] | None = None,
                 on_sent: Callable[[str, int], None] | None = None) -> None:
        from kafka.partitioner.default import murmur2

        self._murmur2 = murmur2
        self.producer = producer
        self.loop = loop
        self.on_latency = on_latency
        self.on_sent = on_sent
        self._done: deque[_Countdown] = deque()
        self._wake_pending = False
        self._wake_lock = threading.Lock()
        self.messages = 0
        self.failures = 0
        self.settled = 0       # messages acknowledged or failed (written by the producer's I/O thread only)
        self._partition_counts: dict[str, int] = {}

    def submit(self, messages: list[OutMessage], event_ids: list[str], network: str = "") -> Delivery:
        future = self.loop.create_future()
        if not messages:
            future.set_result(None)
            return Delivery(future, event_ids, 0, network)
        countdown = _Countdown(len(messages), future)
        send = self.producer.send
        murmur2 = self._murmur2
        key_hash: int | None = None
        key: bytes | None = None
        for m in messages:
            # Same partition as kafka's default partitioner, hashed once per transaction (all of its
            # messages share the signature key) instead of once per message in pure Python.
            if m.key != key:
                key, key_hash = m.key, murmur2(m.key) & 0x7FFFFFFF
            fut = send(m.topic, value=m.value, key=m.key, headers=m.headers,
                       partition=key_hash % self._partitions(m.topic))
            fut.add_callback(self._ack, countdown)
            fut.add_errback(self._fail, countdown)
            if self.on_sent is not None:
                self.on_sent(m.topic, len(m.value))
        self.messages += len(messages)
        return Delivery(future, event_ids, len(messages), network)

    def batch(self) -> _KafkaPythonBatch:
        """Messages of many transactions with one acknowledgement countdown (see processor.process_batch)."""
        return _KafkaPythonBatch(self)

    def learn_partitions(self, topics: list[str]) -> None:
        """Look up every topic's partition count now (blocking; call off the event loop).

        WHY: an unknown topic's first send would ask kafka-python for metadata ON the event loop,
        blocking it for up to max_block_ms (60 s) when the broker is down - during which a SIGTERM
        cannot even be noticed (the status topic is often first used long after start-up)."""
        for topic in topics:
            self._partitions(topic)

    def _partitions(self, topic: str) -> int:
        n = self._partition_counts.get(topic)
        if n is None:
            parts = self.producer.partitions_for(topic)  # blocks for metadata once per topic
            if not parts:
                raise RuntimeError(f"topic {topic} has no partitions")
            n = self._partition_counts[topic] = len(parts)
        return n

    # -- producer I/O thread -------------------------------------------------------------------------
    def _ack(self, countdown: _Countdown, _metadata: object) -> None:
        self.settled += 1
        with countdown.lock:
            countdown.remaining -= 1
            last = countdown.remaining == 0
        if last:
            self._complete(countdown)

    def _fail(self, countdown: _Countdown, exc: BaseException) -> None:
        self.settled += 1
        with countdown.lock:
            first = countdown.error is None
            countdown.error = exc
            countdown.remaining = -1
        if first:
            self._complete(countdown)

    def _complete(self, countdown: _Countdown) -> None:
        self._done.append(countdown)
        with self._wake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # loop closed during shutdown: nobody waits any more
            pass

    # -- event loop ------------------------------------------------------------------------------------
    def _drain(self) -> None:
        with self._wake_lock:
            self._wake_pending = False
        now = time.perf_counter()
        while self._done:
            c = self._done.popleft()
            if c.future.done():
                continue
            if c.error is not None:
                self.failures += 1
                c.future.set_exception(c.error)
            else:
                c.future.set_result(None)
                if self.on_latency is not None:
                    self.on_latency(now - c.started)

    def flush(self, timeout: float | None = None) -> None:
        self.producer.flush(timeout=timeout)

    def outstanding(self) -> int:
        """Messages handed to the producer and neither acknowledged nor failed yet."""
        return max(0, self.messages - self.settled)

    async def aclose(self, timeout: float = 30.0) -> int:
        """Flush for at most `timeout` s (acknowledgements keep arriving through the loop), then close;
        returns how many messages were given up unacknowledged.

        WHY bounded and forced: with the broker down or just restarted, kafka-python's flush would wait
        for delivery timeouts (minutes); a stop must be prompt. Giving up is safe because the checkpoint
        never covers an unacknowledged message: the next start sends it again (a counted duplicate)."""
        from kafka.errors import KafkaError

        def flush_and_close() -> int:
            with contextlib.suppress(KafkaError):      # KafkaTimeoutError: gave up, counted below
                self.producer.flush(timeout=max(0.0, timeout))
            left = self.outstanding()
            try:
                self.producer.close(timeout=0 if left else 5)
            except KafkaError:
                # close() flushes first and raises while messages are outstanding, before it stops
                # the I/O thread: abort that thread's pending requests here instead
                sender = getattr(self.producer, "_sender", None)
                if sender is not None and sender.is_alive():
                    sender.force_close()
            return left
        return await self.loop.run_in_executor(None, flush_and_close)


class _KafkaPythonBatch:
    """KafkaPublisher.batch(): send() now, seal() -> one future for everything sent."""

    def __init__(self, publisher: KafkaPublisher) -> None:
        self.publisher = publisher
        self.future = publisher.loop.create_future()
        # remaining starts "infinite" until seal(): acks may arrive (I/O thread) while sending
        self.countdown = _Countdown(1 << 62, self.future)
        self.sent = 0
        self._key: bytes | None = None
        self._hash = 0

    def send(self, topic: str, value: bytes, key: bytes, headers: list) -> None:
        pub = self.publisher
        if key != self._key:
            self._key, self._hash = key, pub._murmur2(key) & 0x7FFFFFFF
        fut = pub.producer.send(topic, value=value, key=key, headers=headers,
                                partition=self._hash % pub._partitions(topic))
        fut.add_callback(pub._ack, self.countdown)
        fut.add_errback(pub._fail, self.countdown)
        self.sent += 1
        if pub.on_sent is not None:
            pub.on_sent(topic, len(value))

    def seal(self) -> asyncio.Future:
        pub, c = self.publisher, self.countdown
        pub.messages += self.sent
        with c.lock:
            if c.remaining >= 0:            # not failed already
                c.remaining -= (1 << 62) - self.sent
                last = c.remaining == 0
            else:
                last = False
        if last:
            self.future.set_result(None)
            if pub.on_latency is not None:
                pub.on_latency(time.perf_counter() - c.started)
        return self.future


class ConfluentPublisher:
    """The same contract as KafkaPublisher on confluent-kafka (librdkafka).

    WHY: measured against the local broker, kafka-python spends ~60 µs of Python CPU per message
    (record encoding, accumulator locks, GIL hand-offs with its I/O thread) and tops out near 6k
    messages/s on this machine; librdkafka does the same work in C threads for ~8 µs per message at
    ~65k/s. At ~3.4 messages per transaction that is the difference between missing and meeting a
    5,000 tx/s backfill. Delivery callbacks run inside poll(), i.e. on the event loop thread, so
    futures are resolved directly; a small task keeps polling while sends are outstanding.
    """

    def __init__(self, bootstrap: str, loop: asyncio.AbstractEventLoop,
                 on_latency: Callable[[float], None] | None = None,
                 overrides: dict | None = None) -> None:
        from confluent_kafka import Producer

        settings = {**CONFLUENT_DEFAULTS, "bootstrap.servers": bootstrap, **(overrides or {})}
        self.producer: Producer | None = Producer(settings)
        self.loop = loop
        self.on_latency = on_latency
        self.messages = 0
        self.failures = 0
        self._poller: asyncio.Task | None = None

    def submit(self, messages: list[OutMessage], event_ids: list[str], network: str = "") -> Delivery:
        future = self.loop.create_future()
        if not messages:
            future.set_result(None)
            return Delivery(future, event_ids, 0, network)
        batch = _ConfluentBatch(self, future)
        send = batch.send
        for m in messages:
            send(m.topic, m.value, m.key, m.headers)
        batch.seal()
        return Delivery(future, event_ids, len(messages), network)

    def batch(self) -> _ConfluentBatch:
        """Messages of many transactions with one acknowledgement countdown (see processor.process_batch)."""
        return _ConfluentBatch(self, self.loop.create_future())

    def _wait_for_room(self) -> None:
        """librdkafka's queue is full: serve delivery callbacks (this thread), then the caller retries."""
        self.producer.poll(0.05)

    def _ensure_poller(self) -> None:
        self.producer.poll(0)
        if self._poller is None or self._poller.done():
            self._poller = self.loop.create_task(self._poll())

    async def _poll(self) -> None:
        # len(producer) = messages queued, in flight or with an unserved delivery report
        producer = self.producer
        while producer is not None and len(producer) > 0:
            producer.poll(0)
            await asyncio.sleep(POLL_INTERVAL)

    def outstanding(self) -> int:
        """Messages queued, in flight or with an unserved delivery report."""
        return len(self.producer) if self.producer is not None else 0

    async def aclose(self, timeout: float = 30.0) -> int:
        """Serve delivery callbacks on the loop thread until everything is acknowledged or `timeout`
        s passed; returns how many messages were given up unacknowledged.

        WHY bounded: after a broker kill or restart librdkafka keeps retrying a message until
        delivery.timeout.ms (120 s); a SIGTERM stop must not wait for that. Giving up is safe: the
        checkpoint never covers an unacknowledged message, so the next start sends it again."""
        if self.producer is None:
            return 0
        deadline = time.monotonic() + timeout
        left = self.producer.flush(0)
        while left > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            left = self.producer.flush(0)
        if self._poller is not None:
            self._poller.cancel()
        if left:
            # drop what is queued (no delivery reports are served any more: nobody waits for them)
            with contextlib.suppress(Exception):
                self.producer.purge(in_queue=True, in_flight=True, blocking=False)
        self.producer = None  # librdkafka has no close(): dropping the handle destroys it (and its threads)
        return left


class _ConfluentBatch:
    """One acknowledgement countdown over many messages; the instance itself is every message's
    delivery callback (librdkafka calls it from poll(), on the event loop thread: no locks).

    WHY: a callback object per message (closure + countdown per transaction) and a future per
    transaction were a large share of the listener's CPU; here each message costs one produce()
    and one small call when acknowledged."""

    __slots__ = ("publisher", "future", "pending", "sealed", "started")

    def __init__(self, publisher: ConfluentPublisher, future: asyncio.Future) -> None:
        self.publisher = publisher
        self.future = future
        self.pending = 0
        self.sealed = False
        self.started = time.perf_counter()

    def send(self, topic: str, value: bytes, key: bytes, headers: list) -> None:
        # partition chosen by librdkafka's murmur2_random partitioner (CONFLUENT_DEFAULTS): the same
        # partition as Kafka's Java client and kafka-python for a non-null key (tested)
        self.pending += 1
        while True:
            try:
                # (no reference to the producer kept here: undelivered messages hold this object,
                # and it must not keep a dropped producer alive)
                self.publisher.producer.produce(topic, value, key, headers=headers, on_delivery=self)
                return
            except BufferError:
                self.publisher._wait_for_room()

    def seal(self) -> asyncio.Future:
        pub = self.publisher
        pub.messages += self.pending
        self.sealed = True
        if self.pending == 0 and not self.future.done():
            self._resolve()
        else:
            pub._ensure_poller()
        return self.future

    def _resolve(self) -> None:
        self.future.set_result(None)
        on_latency = self.publisher.on_latency
        if on_latency is not None:
            on_latency(time.perf_counter() - self.started)

    def __call__(self, err: object, _msg: object) -> None:
        self.pending -= 1
        if err is not None:
            if not self.future.done():
                self.publisher.failures += 1
                self.future.set_exception(RuntimeError(f"Kafka delivery failed: {err}"))
            return
        if self.pending == 0 and self.sealed and not self.future.done():
            self._resolve()


def confluent_available() -> bool:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return False
    return True
