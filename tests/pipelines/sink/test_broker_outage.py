"""A sink started while the broker is down waits for it (and says so) instead of exiting; a stop during
that wait ends it promptly. Against a real tansu broker of the test's own, stopped and started again."""

from __future__ import annotations

import threading
import time

from infra.local.broker import LocalBroker
from pipelines.kafka.topics import Topics, ensure_topics
from pipelines.sink import totals
from pipelines.sink.consumer import ManualPartitions
from tests.pipelines.sink.conftest import SinkEnv
from tests.pipelines.sink.helpers import Publisher, flow_events, ledger, statuses_for
from tests.pipelines.sink.test_sink_faults import committed
from tests.waiting import seconds_to_stop_while_waiting


def test_sink_started_during_a_broker_outage_waits_then_loads_exactly(tmp_path, ch_dsn, ch_client, ch_database,
                                                                      monkeypatch):
    monkeypatch.setattr(ManualPartitions, "RECHECK_SECONDS", 0.5)
    broker = LocalBroker(tmp_path / "broker").start()
    bootstrap = broker.bootstrap
    broker.stop()                                   # the port is known, nothing answers on it
    topics = Topics("outage")
    env = SinkEnv(bootstrap, ch_dsn, ch_database, topics, None, ch_client)
    sink = env.sink("outage", kafka_client="kafka-python", assignment="manual")
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sink.run(stop)
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    led = ledger()
    events = flow_events(led)
    pub = None
    try:
        time.sleep(3.0)
        assert runner.is_alive() and not errors     # still waiting for the broker, not crashed
        broker.start()                              # same port
        ensure_topics(bootstrap, topics.all(), partitions=3)
        pub = Publisher(bootstrap, topics)
        pub.flows([e for e, _ in events])
        pub.statuses(statuses_for(events))
        deadline = time.monotonic() + 90
        while sink.stats.messages < pub.sent and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sink.stats.messages == pub.sent
    finally:
        stop.set()
        runner.join(30)
        if pub is not None:
            pub.close()
    try:
        assert not errors, errors
        assert totals(ch_client, ch_database) == led.truth_lines()
        assert committed(env, "outage", topics.flows) == len(events)
    finally:
        broker.stop()


def test_a_stop_while_waiting_for_the_broker_returns_promptly(tmp_path, ch_dsn, ch_database):
    broker = LocalBroker(tmp_path / "broker").start()
    bootstrap = broker.bootstrap
    broker.stop()
    env = SinkEnv(bootstrap, ch_dsn, ch_database, Topics("gone"), None, None)
    sink = env.sink("gone", kafka_client="kafka-python")
    stop = threading.Event()
    # the backoff wait ends at the stop, not at the end of its step
    assert seconds_to_stop_while_waiting(lambda: sink.run(stop), stop) < 5
    assert sink.stats.messages == 0
