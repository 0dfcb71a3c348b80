"""Both Kafka publishers against the real broker: per-transaction acks, keys, partitions, headers."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from pipelines.kafka.client import make_producer
from pipelines.kafka.messages import OutMessage
from pipelines.listen.publisher import ConfluentPublisher, KafkaPublisher, confluent_available
from tests.pipelines.listen.simtruth import consume

CLIENTS = ["kafka-python"] + (["confluent"] if confluent_available() else [])


@pytest.mark.parametrize("client", CLIENTS)
def test_every_delivery_resolves_after_its_messages_are_acknowledged(client, bootstrap, topic_factory):
    flows, other = topic_factory("pf", partitions=3), topic_factory("po", partitions=2)

    async def main():
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        if client == "confluent":
            pub = ConfluentPublisher(bootstrap, loop, on_latency=latencies.append)
        else:
            pub = KafkaPublisher(make_producer(bootstrap), loop, on_latency=latencies.append)
        deliveries = []
        for i in range(300):
            key = f"sig{i:04d}".encode()
            msgs = [OutMessage(flows, key, b'{"n":%d}' % i, [("kind", b"flow")]) for _ in range(i % 3)]
            msgs.append(OutMessage(other, key, b'{"r":%d}' % i, [("kind", b"instruction")]))
            deliveries.append(pub.submit(msgs, [f"sig{i:04d}:0"], "helium"))
        empty = pub.submit([], [], "")
        assert empty.done.done() and empty.messages == 0
        await asyncio.wait_for(asyncio.gather(*(d.done for d in deliveries)), 60)
        assert [d.messages for d in deliveries[:3]] == [1, 2, 3]
        assert len(latencies) == 300 and all(x >= 0 for x in latencies)
        await pub.aclose()
        assert pub.messages == sum(d.messages for d in deliveries)
    asyncio.run(main())

    got = consume(bootstrap, flows)
    assert len(got) == sum(i % 3 for i in range(300))
    partitions = defaultdict(set)
    for m in got + consume(bootstrap, other):
        partitions[(m.topic, m.key)].add(m.partition)
    assert all(len(p) == 1 for p in partitions.values())          # one key -> one partition per topic
    assert {h for m in got for h in m.headers} == {("kind", b"flow")}


@pytest.mark.parametrize("client", CLIENTS)
def test_a_batch_resolves_once_after_every_message_is_acknowledged(client, bootstrap, topic_factory):
    """publisher.batch(): one future for many transactions' messages (the backfill's hot path)."""
    flows, other = topic_factory("bf", partitions=3), topic_factory("bo", partitions=2)

    async def main():
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        if client == "confluent":
            pub = ConfluentPublisher(bootstrap, loop, on_latency=latencies.append)
        else:
            pub = KafkaPublisher(make_producer(bootstrap), loop, on_latency=latencies.append)
        futures = []
        for b in range(4):
            batch = pub.batch()
            for i in range(250):
                key = f"sig{b}-{i:04d}".encode()
                batch.send(flows, b'{"n":%d}' % i, key, [("kind", b"flow")])
                batch.send(other, b'{"r":%d}' % i, key, [("kind", b"instruction")])
            futures.append(batch.seal())
        empty = pub.batch().seal()
        assert empty.done() and empty.result() is None
        await asyncio.wait_for(asyncio.gather(*futures), 60)
        assert len(latencies) == 5 and pub.messages == 2000
        await pub.aclose()
    asyncio.run(main())
    assert len(consume(bootstrap, flows)) == 1000
    assert len(consume(bootstrap, other)) == 1000


def test_confluent_partitions_keys_like_the_java_and_kafka_python_default_partitioner(bootstrap, topic_factory):
    """librdkafka's murmur2_random partitioner (set by the publisher) == murmur2(key) % partitions."""
    from kafka.partitioner.default import murmur2

    topic = topic_factory("pp", partitions=5)

    async def main():
        pub = ConfluentPublisher(bootstrap, asyncio.get_running_loop())
        batch = pub.batch()
        for i in range(400):
            batch.send(topic, b"{}", f"{i:088d}-{i * 7919}".encode(), [("kind", b"flow")])
        await asyncio.wait_for(batch.seal(), 60)
        await pub.aclose()
    asyncio.run(main())
    got = consume(bootstrap, topic)
    assert len(got) == 400 and len({m.partition for m in got}) == 5
    assert all(m.partition == (murmur2(m.key) & 0x7FFFFFFF) % 5 for m in got)
