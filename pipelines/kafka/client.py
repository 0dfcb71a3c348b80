"""Producer and consumer settings in one place, so every service talks to Kafka the same way."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer

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
    settings = {**PRODUCER_DEFAULTS, **overrides}
    return KafkaProducer(bootstrap_servers=bootstrap, **settings)


def make_consumer(bootstrap: str, group_id: str | None, topics: list[str] | None = None,
                  **overrides: Any) -> KafkaConsumer:
    settings = {**CONSUMER_DEFAULTS, **overrides}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, **settings)
    if topics:
        consumer.subscribe(topics)
    return consumer
