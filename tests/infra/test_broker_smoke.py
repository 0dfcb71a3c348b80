"""The real broker really works for what the pipeline needs: partitions, lz4, groups, resume."""

from __future__ import annotations

from kafka import TopicPartition

from pipelines.kafka.client import make_consumer, make_producer
from tests.kafkaread import GROUP_SESSION


def _drain(consumer, want: int, timeout_s: float = 30.0) -> list:
    import time

    got: list = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got.extend(records)
    return got


def test_three_partitions_lz4_group_commit_and_resume(bootstrap, topic_factory, unique_name):
    topic = topic_factory("smoke", partitions=3)
    producer = make_producer(bootstrap)
    for i in range(300):
        producer.send(topic, key=f"sig{i % 17}".encode(), value=f"msg-{i}".encode(),
                      headers=[("n", str(i).encode())])
    producer.flush()
    producer.close()

    group = unique_name("grp")
    first = make_consumer(bootstrap, group, [topic], **GROUP_SESSION)
    got = _drain(first, 120)
    # process the first 120 messages we saw, commit exactly those offsets, then "crash"
    seen = got[:120]
    offsets: dict[TopicPartition, int] = {}
    for r in seen:
        tp = TopicPartition(r.topic, r.partition)
        offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
    from kafka.structs import OffsetAndMetadata

    first.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
    partitions_used = {r.partition for r in got}
    first.close(autocommit=False)

    assert partitions_used == {0, 1, 2}
    assert all(r.value.startswith(b"msg-") for r in got)

    second = make_consumer(bootstrap, group, [topic], **GROUP_SESSION)
    rest = _drain(second, 300 - sum(offsets.values()))
    second.close(autocommit=False)
    before = {(r.partition, r.offset) for r in seen}
    after = {(r.partition, r.offset) for r in rest}
    assert not before & after, "a committed message was delivered again after restart"
    values = {r.value for r in seen} | {r.value for r in rest}
    assert values == {f"msg-{i}".encode() for i in range(300)}
