"""With S3 storage (moto), acknowledged messages and committed offsets survive a broker kill -9."""

from __future__ import annotations

import time

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from infra.local.broker import LocalBroker
from pipelines.kafka.client import make_consumer, make_producer
from pipelines.kafka.topics import ensure_topics
from tests.kafkaread import GROUP_SESSION


def test_messages_and_offsets_survive_kill(tmp_path):
    with LocalBroker(tmp_path, durable=True) as broker:
        ensure_topics(broker.bootstrap, ["durable"], partitions=1)
        producer = make_producer(broker.bootstrap)
        for i in range(50):
            producer.send("durable", key=b"k", value=str(i).encode())
        producer.flush()
        producer.close()
        consumer = make_consumer(broker.bootstrap, "g1", ["durable"], **GROUP_SESSION)
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 50 and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=500).values():
                got.extend(recs)
        consumer.commit({TopicPartition("durable", 0): OffsetAndMetadata(20, "", -1)})
        consumer.close(autocommit=False)
        assert [int(r.value) for r in got] == list(range(50))

        broker.restart()  # SIGKILL, then start again on the same port and storage

        resumed = make_consumer(broker.bootstrap, "g1", ["durable"], **GROUP_SESSION)
        rest = []
        deadline = time.monotonic() + 30
        while len(rest) < 30 and time.monotonic() < deadline:
            for recs in resumed.poll(timeout_ms=500).values():
                rest.extend(recs)
        resumed.close(autocommit=False)
        assert [int(r.value) for r in rest] == list(range(20, 50))
