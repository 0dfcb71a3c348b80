"""Producer and consumer settings in one place, so every service talks to Kafka the same way."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

if TYPE_CHECKING:
    from kafka import KafkaConsumer, KafkaProducer

# WHY kafka-python is imported inside the functions below: importing it costs ~0.3 CPU-s (it pulls in
# botocore through kafka.sasl.msk whenever botocore is installed), and a listener or sink that runs on
# confluent-kafka never needs it.

log = structlog.get_logger(__name__)
T = TypeVar("T")

PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",                 # a send is acknowledged only when the broker has it durably
    "compression_type": "lz4",
    "linger_ms": 5,
    "batch_size": 256 * 1024,
    "max_request_size": 8 * 1024 * 1024,
    "retries": 10,
    "retry_backoff_ms": 200,
    "request_timeout_ms": 30_000,
    # tansu + kafka-python 2.3 cannot do InitProducerId; exactly-once comes from event_id dedup instead.
    "enable_idempotence": False,
    "max_in_flight_requests_per_connection": 1,  # keep per-partition order on retries
}

CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable_auto_commit": False,   # offsets are committed only after the ClickHouse insert succeeded
    "auto_offset_reset": "earliest",
    "max_poll_records": 5000,
    "fetch_max_bytes": 64 * 1024 * 1024,
    "max_partition_fetch_bytes": 16 * 1024 * 1024,
    "session_timeout_ms": 10_000,
    "heartbeat_interval_ms": 3_000,
}


def make_producer(bootstrap: str, **overrides: Any) -> KafkaProducer:
    from kafka import KafkaProducer

    settings = {**PRODUCER_DEFAULTS, **overrides}
    return KafkaProducer(bootstrap_servers=bootstrap, **settings)


def make_consumer(bootstrap: str, group_id: str | None, topics: list[str] | None = None,
                  **overrides: Any) -> KafkaConsumer:
    from kafka import KafkaConsumer

    settings = {**CONSUMER_DEFAULTS, **overrides}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, **settings)
    if topics:
        consumer.subscribe(topics)
    return consumer


# librdkafka names. WHY these: offsets are committed by the sink, explicitly and synchronously, only
# after ClickHouse has the rows (no auto commit, no auto offset store); fetches are large because the
# sink inserts 50k-row batches; the local queue is bounded (~128 MiB) so a slow ClickHouse does not
# let a consumer buffer a whole topic in memory.
CONFLUENT_CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "fetch.max.bytes": 64 * 1024 * 1024,
    "max.partition.fetch.bytes": 16 * 1024 * 1024,
    "queued.max.messages.kbytes": 128 * 1024,
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 3_000,
    "log.connection.close": False,   # idle broker connections closing are not worth a stderr line
}


def make_confluent_consumer(bootstrap: str, group_id: str, **overrides: Any):
    """A confluent-kafka (librdkafka) Consumer with the settings above; the caller subscribes."""
    from confluent_kafka import Consumer

    return Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, **CONFLUENT_CONSUMER_DEFAULTS,
                     **overrides})


class BrokerWaitStopped(Exception):
    """A stop was requested while a service was still waiting for the broker to answer."""


class BrokerUnavailable(Exception):
    """No broker answered (raised by the confluent-kafka helpers; kafka-python raises NoBrokersAvailable)."""


def _broker_unavailable(exc: BaseException) -> bool:
    """True for "no broker answered" from either client library.

    kafka-python's NoBrokersAvailable is looked up only if kafka-python was imported: a client that
    was never imported cannot have raised it (see the import note at the top)."""
    if isinstance(exc, BrokerUnavailable):
        return True
    errors = sys.modules.get("kafka.errors")
    return errors is not None and isinstance(exc, errors.NoBrokersAvailable)


def until_broker_reachable(connect: Callable[[], T], what: str, stop: threading.Event | None = None,
                           initial: float = 0.5, maximum: float = 10.0) -> T:
    """`connect()` (a kafka-python client constructor, or a confluent-kafka helper raising BrokerUnavailable)
    until the broker answers, backing off and saying so.

    WHY: kafka-python raises NoBrokersAvailable at construction when the broker is down; a service that
    starts during a broker outage (or restarts with it) should wait for it, not exit and leave recovery
    to a supervisor's restart loop. A stop requested meanwhile ends the wait (BrokerWaitStopped)."""
    delay = initial
    while True:
        try:
            return connect()
        except Exception as exc:
            if not _broker_unavailable(exc):
                raise
            log.warning("kafka_broker_unavailable", client=what, error=type(exc).__name__,
                        retry_in=round(delay, 2))
            if stop is not None and stop.wait(delay):
                raise BrokerWaitStopped(what) from exc
            if stop is None:
                time.sleep(delay)
            delay = min(delay * 2, maximum)
