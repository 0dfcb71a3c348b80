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

    got = consume(bootstrap, flows, idle_ms=1500)
    assert len(got) == sum(i % 3 for i in range(300))
    partitions = defaultdict(set)
    for m in got + consume(bootstrap, other, idle_ms=1000):
        partitions[(m.topic, m.key)].add(m.partition)
    assert all(len(p) == 1 for p in partitions.values())          # one key -> one partition per topic
    assert {h for m in got for h in m.headers} == {("kind", b"flow")}
