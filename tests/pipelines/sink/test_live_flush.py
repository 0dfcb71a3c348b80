"""Live lag in the sink (issue 9): what arrives is fetched at once, written as soon as the sink has
drained the consumer and the writer is free, and small batches take the (cheaper) exact path with the
very rows of the JSON path.

Against the real tansu broker and the embedded ClickHouse, with both Kafka clients."""

from __future__ import annotations

import threading
import time

import pytest

from pipelines.kafka.client import make_producer
from pipelines.kafka.messages import flow_message, record_message
from pipelines.kafka.topics import Topics, ensure_topics
from pipelines.sink.config import ConfigError, SinkConfig
from pipelines.sink.consumer import FETCH_WAIT_MS, client_settings, open_source
from pipelines.sink.inflow import QUIET_SECONDS, InflowMeter
from tests.pipelines.sink.helpers import listener_day, status_record
from tests.pipelines.sink.test_jsonflows import event, table_rows
from tests.pipelines.sink.test_sink_faults import committed

CLIENTS = ["kafka-python", "confluent"]


def test_consumer_settings_fetch_wait_default_and_override():
    assert FETCH_WAIT_MS == 50
    assert client_settings("confluent", {}) == {"fetch.wait.max.ms": 50}
    assert client_settings("confluent", {"fetch.wait.max.ms": 500, "a": 1}) == {"fetch.wait.max.ms": 500, "a": 1}
    assert client_settings("kafka-python", {}) == {}
    assert client_settings("kafka-python", {"fetch_max_wait_ms": 7}) == {"fetch_max_wait_ms": 7}


@pytest.mark.parametrize(("name", "default", "in_file", "env_var"), [
    ("json_min_rows", 1000, 5, "DEPINFLOW_SINK_JSON_MIN_ROWS"),
    ("bulk_rate", 2000, 500, "DEPINFLOW_SINK_BULK_RATE"),
])
def test_flush_policy_setting(tmp_path, name, default, in_file, env_var):
    """Default, [sink] in the config file, the environment over the file, and a negative value refused."""
    assert getattr(SinkConfig(), name) == default
    f = tmp_path / "sink.toml"
    f.write_text(f"[sink]\n{name} = {in_file}\n")
    assert getattr(SinkConfig.load(f, env={}), name) == in_file
    assert getattr(SinkConfig.load(f, env={env_var: "0"}), name) == 0
    with pytest.raises(ConfigError, match=name):
        SinkConfig(**{name: -1})


@pytest.mark.parametrize("client", CLIENTS)
def test_poll_hands_out_queued_records_without_waiting_out_its_timeout(bootstrap, unique_name, client):
    """Before: confluent's consume(n, timeout) returned only with n records or at the timeout, so every
    live poll took the whole poll timeout. Records come back in offset order, at most max_records a
    poll, none lost or repeated."""
    topic = unique_name("lf")
    ensure_topics(bootstrap, [topic], partitions=1)
    producer = make_producer(bootstrap)
    for i in range(25):
        producer.send(topic, key=b"k", value=b"%d" % i)
    producer.flush()
    producer.close()
    src = open_source(client, bootstrap, unique_name("g"), "t", 10, {}, {}, "manual")
    src.subscribe([topic], on_assign=lambda tps: None, on_revoke=lambda tps: None, on_lost=lambda tps: None)
    try:
        got: list[bytes] = []
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:     # the first fetch after the assignment
            for recs in src.poll(10, 1000).values():
                got += src.values(recs)
        assert 0 < len(got) <= 10
        waits = []
        while len(got) < 25 and time.monotonic() < deadline:
            started = time.monotonic()
            batch = [v for recs in src.poll(10, 8000).values() for v in src.values(recs)]
            waits.append(time.monotonic() - started)
            assert 0 < len(batch) <= 10
            got += batch
        assert got == [b"%d" % i for i in range(25)]
        assert max(waits) < 4.0, waits           # never the 8 s timeout with records at hand
        started = time.monotonic()
        assert src.poll(10, 300) == {}           # nothing there: the timeout is waited out, empty
        assert time.monotonic() - started >= 0.25
    finally:
        src.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_steady_stream_is_written_while_it_flows_not_after_batch_seconds(sink_env, client):
    """A message every 50 ms, batch_seconds 60: rows reach ClickHouse within seconds, while the stream
    still runs (the sink writes when it has drained the consumer and its writer is free)."""
    sink = sink_env.sink(f"live-{client}", kafka_client=client, assignment="manual", batch_seconds=60.0,
                         poll_timeout_ms=200)
    sink.start()          # tables migrated before the test reads them
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    producer = make_producer(sink_env.bootstrap, linger_ms=0)
    sent: dict[str, float] = {}
    lags: list[float] = []      # of the messages sent after the first row was seen (start-up is not lag)
    warm = False
    try:
        deadline = time.monotonic() + 40
        i = 0
        while len(lags) < 20 and time.monotonic() < deadline:
            ev = event(i)
            m = flow_message(sink_env.topics.flows, ev)
            producer.send(m.topic, key=m.key, value=m.value, headers=m.headers)
            producer.flush()
            sent[ev.signature] = (time.monotonic(), warm)
            i += 1
            time.sleep(0.05)
            seen = sink_env.q("SELECT signature FROM {db}.usage_fees")
            now = time.monotonic()
            for (sig,) in seen:
                if sig in sent:
                    at, counted = sent.pop(sig)
                    warm = True
                    if counted:
                        lags.append(now - at)
    finally:
        stop.set()
        thread.join(30)
        producer.close()
    assert not thread.is_alive()
    assert len(lags) >= 20, f"only {len(lags)} rows written while streaming {i} messages"
    assert sorted(lags)[len(lags) // 2] < 5.0, lags   # batch_seconds (60 s) is not what bounds it
    assert sink.stats.batches >= 2                    # written as the stream went, not in one batch


def test_small_batches_take_the_exact_path_with_the_rows_of_the_json_path(sink_env, ch_client):
    """The listener's real messages (flows and instruction records) in one small batch: with the
    default json_min_rows every table group is below it and goes the exact path (no JSON statement,
    none refused); with json_min_rows 1 the same messages take the JSON paths. Same rows either way."""
    msgs = [m for m in listener_day() if m.topic in ("day.flows.v1", "day.instructions.v1")][:600]
    topics = sink_env.topics
    rename = {"day.flows.v1": topics.flows, "day.instructions.v1": topics.instructions}
    sink_env.publisher.send([type(m)(rename[m.topic], m.key, m.value, m.headers) for m in msgs])
    n_flows = sum(m.topic == "day.flows.v1" for m in msgs)
    assert 100 < n_flows < 500

    exact = sink_env.sink("exact", json_min_rows=1000).run_until_idle()
    assert (exact.messages, exact.json_rows, exact.json_refused, exact.dead_letters) == (600, 0, 0, 0)
    other = f"{sink_env.database}_json"
    try:
        js = sink_env.sink("json", database=other, json_min_rows=1).run_until_idle()
        assert js.messages == 600 and js.json_rows > 500 and js.dead_letters == 0
        for table in ("usage_fees", "emissions", "other_flows", "instructions"):
            rows = table_rows(ch_client, sink_env.database, table)
            assert rows == table_rows(ch_client, other, table), table
        assert sum(len(table_rows(ch_client, other, t)) for t in ("usage_fees", "emissions", "other_flows")) \
            == n_flows
    finally:
        ch_client.command(f"DROP DATABASE IF EXISTS {other} SYNC")


def test_topics_helper_names_match_the_listener_day():
    """The renaming above relies on the listener day's topic names (prefix "day")."""
    day = Topics("day")
    assert {m.topic for m in listener_day()} <= {day.flows, day.instructions, day.status, day.deadletter}


@pytest.mark.parametrize("client", CLIENTS)
def test_carried_reconciliation_commits_only_reconciled_rows_and_ends_exact(sink_env, client):
    """A dense stream of confirmed events, each followed by its finalized status: while rows wait for
    the writer, writes leave their reconciliation to a later one (reconcile_seconds 30), holding back
    their offsets. A sink stopped without its final reconciliation commits nothing it did not reconcile:
    its successor re-reads the rest, and every row ends at its finalized version, offsets all committed."""
    group = f"carry-{client}"
    producer = make_producer(sink_env.bootstrap, linger_ms=0)
    topics = sink_env.topics
    published = {"flows": 0, "status": 0}

    def publish(i: int) -> None:
        ev = event(i, commitment="confirmed")
        m = flow_message(topics.flows, ev)
        producer.send(m.topic, key=m.key, value=m.value, headers=m.headers)
        s = record_message(topics.status, "status", status_record(ev.signature, ev.slot, "finalized", [ev.event_id]))
        producer.send(s.topic, key=s.key, value=s.value, headers=s.headers)
        published["flows"] += 1
        published["status"] += 1

    first = sink_env.sink(group, kafka_client=client, assignment="manual", reconcile_seconds=30.0)
    stop = threading.Event()
    # a stop that skips the final write and reconciliation: the sink's state at a crash, minus the crash
    first._reconcile_held = lambda retry=True: None
    first._flush = lambda retry=True: None
    thread = threading.Thread(target=first.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        i = 0
        while (first.stats.carried_reconciles < 3 or i < 100) and time.monotonic() < deadline:
            publish(i)
            i += 1
            if i % 5 == 0:
                producer.flush()
                time.sleep(0.02)
        producer.flush()
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert first.stats.carried_reconciles >= 3, first.stats
    # offsets still held at the stop were never committed; the successor re-reads exactly what was not
    done = {t: committed(sink_env, group, t) or 0 for t in (topics.flows, topics.status)}
    assert all(off > first._committed.get(tp, 0) for tp, off in first._held.items())
    second = sink_env.sink(group, kafka_client=client, assignment="manual").run_until_idle(idle_seconds=1.0)
    assert second.messages == published["flows"] - done[topics.flows] + published["status"] - done[topics.status]
    assert committed(sink_env, group, topics.flows) == published["flows"]
    assert committed(sink_env, group, topics.status) == published["status"]
    rows = sink_env.q("SELECT commitment, count() FROM {db}.usage_fees FINAL GROUP BY commitment")
    assert rows == [("finalized", published["flows"])]


def test_inflow_meter_tells_a_stream_from_a_trickle_and_a_pause():
    meter = InflowMeter(bulk_rate=1000)
    assert not meter.streaming(0.0)                    # nothing yet
    for i in range(10):                                # 100 messages every 0.05 s: 2,000 a second
        meter.record(10.0 + i * 0.05, 100)
    now = 10.0 + 9 * 0.05
    assert meter.rate(now) == 1000.0                   # the 10 polls of the last second (window 1 s)
    assert meter.streaming(now)
    assert not meter.streaming(now + QUIET_SECONDS + 0.01)   # paused: write what is held
    assert meter.rate(now + 1.5) == 0.0                # the window moved past every poll
    live = InflowMeter(bulk_rate=1000)
    for i in range(5):                                 # a slot's burst of 70 every 0.4 s: live traffic
        live.record(i * 0.4, 70)
    assert not live.streaming(4 * 0.4)
    off = InflowMeter(bulk_rate=0)
    off.record(1.0, 10**6)
    assert not off.streaming(1.0)                      # 0: always write as soon as caught up


def test_a_backfill_streaming_in_is_written_in_batch_seconds_batches(sink_env):
    """~6,000 messages a second for ~3 s into a sink that keeps up: above bulk_rate it batches by
    batch_seconds (at most ~one write per 1.5 s, plus the first and the last), instead of writing
    every time it has caught up; the last rows follow within seconds of the stream's end."""
    sink = sink_env.sink("bulk", kafka_client="confluent", assignment="manual", batch_seconds=1.5,
                         bulk_rate=1000, json_min_rows=1000)
    sink.start()
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    msgs = [flow_message(sink_env.topics.flows, event(i)) for i in range(18_000)]
    producer = make_producer(sink_env.bootstrap)
    try:
        started = time.monotonic()
        for k in range(0, len(msgs), 300):
            for m in msgs[k:k + 300]:
                producer.send(m.topic, key=m.key, value=m.value, headers=m.headers)
            producer.flush()
            time.sleep(max(0.0, started + (k + 300) / 6000 - time.monotonic()))
        streamed = time.monotonic() - started
        deadline = time.monotonic() + 60
        while sink_env.q("SELECT count() FROM {db}.usage_fees")[0][0] < len(msgs) and time.monotonic() < deadline:
            time.sleep(0.1)
        tail = time.monotonic() - started - streamed
    finally:
        stop.set()
        thread.join(30)
        producer.close()
    assert sink_env.q("SELECT count(), uniqExact(signature) FROM {db}.usage_fees") == [(18_000, 18_000)]
    assert sink.stats.batches <= streamed / 1.5 + 3, (sink.stats.batches, streamed)
    assert tail < 15, tail
