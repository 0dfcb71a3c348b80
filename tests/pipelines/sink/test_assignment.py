"""Manual assignment: one sink reads every partition itself, commits under its group id, joins no group.

Against the real broker and ClickHouse, with both Kafka clients: exact totals, offsets committed for every
partition, a restart resumes from those offsets (reads only what is new), a group member of the same
group later starts where the manual sink left off, and partitions of topics created after the sink
started are picked up."""

from __future__ import annotations

import threading
import time

import pytest

from pipelines.kafka.topics import Topics, ensure_topics
from pipelines.sink import totals
from pipelines.sink.config import ConfigError, SinkConfig
from pipelines.sink.consumer import ManualPartitions
from tests.pipelines.sink.conftest import SinkEnv
from tests.pipelines.sink.helpers import Publisher, flow_events, ledger, statuses_for
from tests.pipelines.sink.test_sink_faults import committed

CLIENTS = ["kafka-python", "confluent"]


@pytest.mark.parametrize("client", CLIENTS)
def test_manual_sink_loads_exactly_commits_and_resumes_from_its_offsets(sink_env, client):
    led = ledger()
    events = flow_events(led)
    half = len(events) // 2
    pub = sink_env.publisher
    pub.flows([e for e, _ in events[:half]])
    group = f"manual-{client}"

    first = sink_env.sink(group, kafka_client=client, assignment="manual")
    started = time.monotonic()
    assert first.run_until_idle(idle_seconds=1.0).messages == half
    assert time.monotonic() - started < 30      # no group join to wait for
    assert committed(sink_env, group, sink_env.topics.flows) == half

    pub.flows([e for e, _ in events[half:]])
    pub.statuses(statuses_for(events))
    second = sink_env.sink(group, kafka_client=client, assignment="manual")
    stats = second.run_until_idle(idle_seconds=1.0)
    assert stats.messages == pub.sent - half        # resumed at the committed offsets: nothing re-read
    assert committed(sink_env, group, sink_env.topics.flows) == len(events)
    assert totals(sink_env.client, sink_env.database) == led.truth_lines()

    # a group member of the same group (scale-out later) starts where the manual sink committed
    member = sink_env.sink(group, kafka_client=client, assignment="group")
    assert member.run_until_idle(idle_seconds=1.0).messages == 0
    assert totals(sink_env.client, sink_env.database) == led.truth_lines()


@pytest.mark.parametrize("client", CLIENTS)
def test_manual_sink_takes_partitions_of_topics_created_after_it_started(bootstrap, ch_dsn, ch_client,
                                                                          ch_database, unique_name, monkeypatch,
                                                                          client):
    monkeypatch.setattr(ManualPartitions, "RECHECK_SECONDS", 0.5)
    topics = Topics(unique_name("late"))
    env = SinkEnv(bootstrap, ch_dsn, ch_database, topics, Publisher(bootstrap, topics), ch_client)
    led = ledger()
    events = flow_events(led)
    sink = env.sink("late", kafka_client=client, assignment="manual")
    stop = threading.Event()
    runner = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    runner.start()                                # no topic exists yet
    try:
        time.sleep(1.5)
        ensure_topics(bootstrap, topics.all(), partitions=3)
        env.publisher.flows([e for e, _ in events])
        env.publisher.statuses(statuses_for(events))
        deadline = time.monotonic() + 60
        while sink.stats.messages < env.publisher.sent and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        runner.join(30)
        env.publisher.close()
    assert sink.stats.messages == env.publisher.sent
    assert totals(ch_client, ch_database) == led.truth_lines()
    assert committed(env, "late", topics.flows) == len(events)


def test_manual_partitions_hands_out_each_partition_once_and_rechecks_on_time():
    seen = {"a": [0, 1], "b": []}
    parts = ManualPartitions(["a", "b"])
    assert parts.due(0.0)
    first = parts.new(lambda ts: {t: seen[t] for t in ts}, now=100.0)
    assert [(tp.topic, tp.partition) for tp in first] == [("a", 0), ("a", 1)]
    assert parts.missing() == ["b"]                 # "b" not created yet: look again soon
    assert not parts.due(100.0 + ManualPartitions.MISSING_RECHECK_SECONDS - 0.1)
    assert parts.due(100.0 + ManualPartitions.MISSING_RECHECK_SECONDS)
    parts.new(lambda ts: {t: seen[t] for t in ts}, now=101.0)         # still missing: the wait doubles
    assert not parts.due(101.0 + 2 * ManualPartitions.MISSING_RECHECK_SECONDS - 0.1)
    assert parts.due(101.0 + 2 * ManualPartitions.MISSING_RECHECK_SECONDS)
    for now in range(102, 110):                     # ... up to the long wait, never beyond
        parts.new(lambda ts: {t: seen[t] for t in ts}, now=float(now))
    assert parts.due(109.0 + ManualPartitions.RECHECK_SECONDS)
    assert not parts.due(109.0 + ManualPartitions.RECHECK_SECONDS - 0.1)
    seen.update(a=[0, 1, 2], b=[0])
    later = parts.new(lambda ts: {t: seen[t] for t in ts}, now=111.0)
    assert [(tp.topic, tp.partition) for tp in later] == [("a", 2), ("b", 0)]
    assert parts.missing() == []                    # every topic has partitions: new ones are rare
    assert not parts.due(111.0 + ManualPartitions.RECHECK_SECONDS - 0.1)
    assert parts.due(111.0 + ManualPartitions.RECHECK_SECONDS)
    assert parts.new(lambda ts: {t: seen[t] for t in ts}, now=122.0) == []


def test_a_failed_partition_lookup_waits_the_long_recheck():
    parts = ManualPartitions(["a"])

    def broker_away(topics: list[str]) -> dict[str, list[int]]:
        raise ConnectionError("broker away")

    with pytest.raises(ConnectionError):
        parts.new(broker_away, now=50.0)
    assert not parts.due(50.0 + ManualPartitions.RECHECK_SECONDS - 0.1)
    assert parts.due(50.0 + ManualPartitions.RECHECK_SECONDS)


def test_assignment_setting():
    assert SinkConfig().assignment == "group"
    assert SinkConfig.load(env={"DEPINFLOW_SINK_ASSIGNMENT": "manual"}).assignment == "manual"
    with pytest.raises(ConfigError, match="assignment"):
        SinkConfig(assignment="static")
