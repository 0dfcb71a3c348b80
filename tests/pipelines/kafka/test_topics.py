"""Topic creation through either client library, and the listener's start-up imports."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka.admin import AdminClient

from pipelines.kafka.client import BrokerUnavailable, BrokerWaitStopped, until_broker_reachable
from pipelines.kafka.topics import Topics, ensure_topics, ensure_topics_confluent


def _partitions(bootstrap: str, names: list[str]) -> dict[str, int]:
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    return {n: len(topics[n].partitions) for n in names if n in topics}


def test_ensure_topics_confluent_creates_only_what_is_missing(bootstrap, unique_name):
    topics = Topics(unique_name("tc"))
    first = [topics.flows, topics.instructions]
    assert ensure_topics_confluent(bootstrap, first, partitions=3) == first
    assert ensure_topics_confluent(bootstrap, topics.all(), partitions=2) == [topics.deadletter, topics.status]
    assert ensure_topics_confluent(bootstrap, topics.all(), partitions=5) == []
    # kafka-python's check sees the same topics (the two helpers are interchangeable)
    assert ensure_topics(bootstrap, topics.all(), partitions=5) == []
    assert _partitions(bootstrap, topics.all()) == {topics.flows: 3, topics.instructions: 3,
                                                    topics.deadletter: 2, topics.status: 2}


def test_ensure_topics_confluent_concurrent_creators_both_succeed(bootstrap, unique_name):
    names = [unique_name("race") for _ in range(3)]
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_topics_confluent(bootstrap, names)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    assert sorted(results[0] + results[1]) == sorted(names)     # each created once, no error
    assert _partitions(bootstrap, names) == dict.fromkeys(names, 3)


def test_unreachable_broker_is_waited_out_until_stop():
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(BrokerWaitStopped):
        until_broker_reachable(lambda: ensure_topics_confluent("127.0.0.1:1", ["x"], timeout=0.5), "test", stop)
    assert 1.4 < time.monotonic() - t0 < 5
    with pytest.raises(BrokerUnavailable):
        ensure_topics_confluent("127.0.0.1:1", ["x"], timeout=0.5)


def test_until_broker_reachable_passes_other_errors_through():
    def boom() -> None:
        raise ValueError("not a broker outage")
    with pytest.raises(ValueError):
        until_broker_reachable(boom, "test", threading.Event())


def test_listener_command_imports_neither_kafka_python_nor_the_sink():
    """`depinflow listen` on confluent-kafka: kafka-python (~0.3 CPU-s with botocore) and the sink's
    ClickHouse client are start-up cost it never uses."""
    code = ("import sys, pipelines.cli.cmd_listen, pipelines.listen.service, pipelines.listen.workers; "
            "print(sorted(m for m in ('kafka', 'botocore', 'clickhouse_connect', 'pipelines.sink') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
