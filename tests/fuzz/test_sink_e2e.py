"""Bad Kafka messages mixed into a real stream: the broker, the sink and ClickHouse, end to end.

The simulator's transactions go through the listener's processor (flows, instruction records, one
status per transaction: finalized, or retracted for a forked block) and are published to the four
topics, interleaved with a deterministic set of damaged messages (tests/fuzz/messages.py). After the
sink drains the topics:
- the real events total exactly the simulator's ground truth (nothing lost, nothing doubled, no fuzz
  message overwrote or retracted a real one);
- every damaged message the parser rejects is in dead_letters under its Kafka coordinates with the
  parser's reason and its raw bytes; every one it accepts is in its table (or, if ClickHouse refused
  the row, dead-lettered as insert_failed);
- the consumer group committed past every message of every partition (no poison message stalls it).
"""

from __future__ import annotations

import random
from collections import defaultdict

import orjson
from kafka import KafkaConsumer, TopicPartition

from pipelines.kafka.client import make_producer
from pipelines.kafka.topics import Topics, ensure_topics
from pipelines.sink import Sink, SinkConfig
from pipelines.sink.rows import KIND_DEADLETTER, KIND_FLOW, KIND_INSTRUCTION, KIND_STATUS, Rejected
from tests.fuzz.corpus import RandomChooser, listener_messages, sim_ledger, sim_results
from tests.fuzz.messages import FuzzMessage, expected_fate, fuzz_message
from tests.fuzz.profiles import LONG, LONG_FACTOR
from tests.kafkaread import GROUP_SESSION

N_FUZZ = 4000 * (LONG_FACTOR if LONG else 1)
SEED = 20260328


def real_messages(topics: Topics) -> tuple[list[tuple[str, FuzzMessage]], set[str]]:
    """(topic, message) for every simulator transaction, and the real flow event ids."""
    led = sim_ledger()
    forked = {b.slot for b in led.blocks if b.forked}
    kind_of = {"flows": KIND_FLOW, "instructions": KIND_INSTRUCTION, "deadletter": KIND_DEADLETTER}
    out, flow_ids = [], set()
    for raw in sim_results("json"):
        doc = orjson.loads(raw)
        sig, slot = doc["transaction"]["signatures"][0], doc["slot"]
        ids = []
        for m in listener_messages(doc, sig, slot, doc["blockTime"]):
            kind = kind_of[m.topic.split(".")[1]]
            out.append((getattr(topics, m.topic.split(".")[1]), FuzzMessage(kind, m.value, m.headers, m.key)))
            if kind == KIND_FLOW:
                ids.append(orjson.loads(m.value)["event_id"])
        flow_ids.update(ids)
        status = {"signature": sig, "slot": slot, "status": "retracted" if slot in forked else "finalized",
                  "event_ids": ids, "block_time": doc["blockTime"], "schema_version": "v1"}
        out.append((topics.status, FuzzMessage(KIND_STATUS, orjson.dumps(status), [("kind", b"status")],
                                               sig.encode())))
    return out, flow_ids


def test_damaged_messages_are_dead_lettered_and_the_rest_flows(bootstrap, ch_client, ch_dsn, ch_database,
                                                               unique_name):
    topics = Topics(unique_name("fz"))
    ensure_topics(bootstrap, topics.all(), partitions=3)
    topic_of = {KIND_FLOW: topics.flows, KIND_INSTRUCTION: topics.instructions,
                KIND_DEADLETTER: topics.deadletter, KIND_STATUS: topics.status}
    real, real_ids = real_messages(topics)
    rng = random.Random(SEED)
    ch = RandomChooser(rng)
    fuzz = [(None, fuzz_message(ch)) for _ in range(N_FUZZ)]
    stream = real + fuzz
    rng.shuffle(stream)

    producer = make_producer(bootstrap)
    sent = []
    for topic, msg in stream:
        fut = producer.send(topic or topic_of[msg.kind], key=msg.key, value=msg.value, headers=msg.headers)
        sent.append((topic is None, msg, fut))
    producer.flush()
    placed = [(is_fuzz, msg, fut.get(timeout=30)) for is_fuzz, msg, fut in sent]
    producer.close()

    group = unique_name("g")
    sink = Sink(SinkConfig(bootstrap=bootstrap, clickhouse_dsn=ch_dsn, database=ch_database,
                           topic_prefix=topics.prefix, group_id=group, batch_rows=400, batch_seconds=0.3,
                           retry_initial_seconds=0.05, retry_max_seconds=0.4, poll_timeout_ms=100,
                           consumer_overrides=dict(GROUP_SESSION)),
                client=ch_client)
    # everything is published before the sink starts: quiet time after the high watermarks is a margin only
    stats = sink.run_until_idle(idle_seconds=0.5, timeout=300)
    assert stats.messages == len(placed)

    def q(sql: str) -> list[tuple]:
        return ch_client.query(sql.replace("{db}", ch_database)).result_rows

    # 1. the real stream is intact: exact ground truth, each surviving event once
    sums: dict[tuple, int] = defaultdict(int)
    seen = defaultdict(int)
    for eid, *key, amount in q("SELECT event_id, network, toString(day), flow_class, subtype, mint, "
                               "toString(amount_raw) FROM {db}.flows"):
        if eid in real_ids:
            sums[tuple(key)] += int(amount)
            seen[eid] += 1
    truth = sim_ledger().truth_lines()
    assert [dict(zip(("network", "day", "flow_class", "subtype", "mint"), k, strict=True)) | {"amount_raw": v}
            for k, v in sorted(sums.items())] == truth
    assert set(seen.values()) == {1}

    # 2. every damaged message has the fate the parser gives it
    dead = {r[0]: r[1:] for r in q("SELECT event_id, source, stage, reason, raw_hex FROM {db}.dead_letters "
                                   "WHERE source = 'sink'")}
    upstream = {r[0] for r in q("SELECT event_id FROM {db}.dead_letters WHERE source = 'upstream'")}
    flow_rows = {r[0] for r in q("SELECT event_id FROM {db}.usage_fees UNION ALL SELECT event_id FROM "
                                 "{db}.emissions UNION ALL SELECT event_id FROM {db}.other_flows")}
    instr_rows = {r[0] for r in q("SELECT event_id FROM {db}.instructions")}
    status_rows = {(r[0], r[1]) for r in q("SELECT signature, slot FROM {db}.commitment_status")}
    fates = defaultdict(int)
    for is_fuzz, msg, meta in placed:
        if not is_fuzz:
            continue
        kafka_id = f"kafka:{meta.topic}:{meta.partition}:{meta.offset}"
        fate = expected_fate(msg, meta.topic, meta.partition, meta.offset)
        if isinstance(fate, Rejected):
            assert kafka_id in dead, (kafka_id, fate)
            assert dead[kafka_id] == ("sink", "sink.parse", fate.reason, (msg.value or b"").hex()), kafka_id
            fates[f"rejected:{fate.reason}"] += 1
            continue
        spec, row = fate
        if kafka_id in dead:                     # accepted by the parser, refused by ClickHouse
            assert dead[kafka_id][1:3] == ("sink.insert", "insert_failed"), (kafka_id, dead[kafka_id])
            fates["insert_failed"] += 1
        elif msg.kind == KIND_FLOW:
            assert row[0] in flow_rows, row[0]
            fates["flow_row"] += 1
        elif msg.kind == KIND_INSTRUCTION:
            assert row[0] in instr_rows, row[0]
            fates["instruction_row"] += 1
        elif msg.kind == KIND_STATUS:
            assert (row[0], row[1]) in status_rows, row[:2]
            fates["status_row"] += 1
        else:   # an upstream dead letter: its row (rows with one key collapse, as for every table)
            assert row[0] in upstream, (kafka_id, row[0])
            fates["upstream_dead_letter"] += 1
    print(f"\n{N_FUZZ} damaged messages among {len(real)} real ones: {dict(sorted(fates.items()))}")
    assert sum(v for k, v in fates.items() if k.startswith("rejected:")) > N_FUZZ // 3
    assert fates["flow_row"] and fates["status_row"] and fates["instruction_row"]
    # nothing real was dead-lettered
    assert not {r[0] for r in q("SELECT signature FROM {db}.dead_letters WHERE source = 'upstream'")} & {
        m.key.decode() for f, m, _ in placed if not f}

    # 3. the group committed past everything: no poison message holds a partition back
    ends: dict[TopicPartition, int] = {}
    for _f, _m, meta in placed:
        tp = TopicPartition(meta.topic, meta.partition)
        ends[tp] = max(ends.get(tp, 0), meta.offset + 1)
    probe = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        assert {tp: probe.committed(tp) for tp in ends} == ends
    finally:
        probe.close()
