"""Kafka helpers for tests. Read a whole topic in a test: every message from offset 0 up to the partitions' high watermarks.

WHY not "until the topic stays idle for N s" (what the tests did): that waited out N seconds (1-2.5 s) on
every read, ~3.5 s per listener test, and tells nothing more. The tests read after the producer has
flushed, so every message is already on the broker; the high watermark the broker reports in each fetch
response (kafka-python's `highwater()`, the one the sink's lag and `--until-idle` use) says where the
partition ends. tansu's ListOffsets(latest) (`end_offsets()`) is wrong, so it is not used.
"""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition

# A consumer group member's session in tests whose subject is not the session length: tansu holds a
# JoinGroup for about half the member's session timeout, so a member got its partitions ~5.1 s after
# subscribing with the 10 s default and ~2.1 s with 3 s (heartbeats every 0.5 s keep it alive).
GROUP_SESSION = {"session_timeout_ms": 3_000, "heartbeat_interval_ms": 500}
CONFLUENT_GROUP_SESSION = {"session.timeout.ms": 3_000, "heartbeat.interval.ms": 500}


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list:
    """Every record of `topic` (per partition in offset order); [] if the topic does not exist.

    Raises AssertionError if the high watermarks are not reached within `timeout`."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=50)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list = []
        deadline = time.monotonic() + timeout
        while not _at_end(consumer, tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: high watermarks not reached in {timeout}s "
                                     f"({[(tp.partition, consumer.position(tp), consumer.highwater(tp)) for tp in tps]})")
            for records in consumer.poll(timeout_ms=100).values():
                out.extend(records)
        return out
    finally:
        consumer.close()


def _at_end(consumer: KafkaConsumer, tps: list[TopicPartition]) -> bool:
    for tp in tps:
        hw = consumer.highwater(tp)
        if hw is None or consumer.position(tp) < hw:
            return False
    return True
