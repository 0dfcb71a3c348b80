"""Benchmark of the sink and the invoice view on the embedded engines.

1. Throughput: N messages are produced to a local tansu broker with the listener's encoding, then one
   Sink (batches of 50k) drains them into embedded ClickHouse (chdb). `--mix day` (default): the
   messages the listener's real processor publishes for a simulated day (flows, instruction records,
   dead letters in their real ratio), repeated with fresh signatures up to N; `--mix flows`: synthetic
   flow events only (the figure of sessions 1-2). Printed: end-to-end rows/s (first fetch to last commit; the
   consumer-group join, ~5 s on tansu once per process, is printed apart and in a second figure), the
   sink's own rows/s (routing/decoding + write + commit seconds, without the Kafka fetch), the write
   step alone, and rows per CPU second (less sensitive to a shared machine). The write of a batch runs
   in a writer thread while the next batch is fetched, so "write" seconds are time in flight and
   overlap "poll" seconds: end to end is the figure that counts. Flows go through ClickHouse's JSON
   parser (sink/jsonflows.py, instruction records sink/jsoninstructions.py); --exact-path measures
   the Python paths instead. Rows/s are printed per table and overall.
3. --floor: what this machine can do at best with the same messages and batches: (a) the fastest fetch
   loop (confluent consume, values touched, nothing else), (b) the fastest insert (one JSONEachRow
   payload per table of the raw values, no checks), (c) both in one loop (insert in a thread while the
   next batch is fetched, as the sink does); CPU us per row and rows/s, median of --runs.
4. --statement-cost: the engine's fixed CPU per INSERT statement (the sink's JSON statements at 100, 1k
   and all rows of a simulated day, the same with the settings applied by clickhouse-connect's SET round trips, a one-row
   VALUES insert), median of --runs (default 7).
2. invoice_daily over 10 million flows generated in ClickHouse with INSERT ... SELECT FROM numbers()
   (two networks, a year of days, every flow class), cold and warm, before and after merges.

Run:  .venv/bin/python bench/sink.py [--events 500000] [--flows 10000000] [--batch-rows 50000] [--exact-path]
      [--runs 3] [--kafka-client auto|confluent|kafka-python] [--skip-invoice] [--mix day|flows] [--floor]
      [--statement-cost]
Data goes to a temporary directory (or --data-dir), deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from itertools import groupby
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.networks.events import FlowEvent  # noqa: E402
from infra.local.broker import LocalBroker  # noqa: E402
from infra.local.clickhouse import chdb_dsn, get_client  # noqa: E402
from pipelines.clickhouse.migrate import migrate  # noqa: E402
from pipelines.kafka.client import make_producer  # noqa: E402
from pipelines.kafka.messages import OutMessage, flow_message  # noqa: E402
from pipelines.kafka.topics import Topics, ensure_topics  # noqa: E402
from pipelines.sink import Sink, SinkConfig  # noqa: E402

KINDS = [("usage_fee", "data_transfer", "DC", 0), ("usage_fee", "onboarding", "DC", 0),
         ("emission", "rewards_escrow", "HNT", 8), ("purchase", "hnt_burned", "HNT", 8),
         ("distribution", "lazy_distributor", "HNT", 8), ("transfer", "token_transfer", "RENDER", 8),
         ("reversal", "no_emit", "HNT", 8), ("other", "unmatched", "MOBILE", 6)]


def make_events(n: int, seed: int = 1) -> list[FlowEvent]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        cls, sub, sym, dec = KINDS[i % len(KINDS)]
        slot = 400_000_000 + i // 3
        ev = FlowEvent(
            signature=f"{i:064x}{rnd.getrandbits(64):024x}", ix_path=f"{i % 5}.{i % 3 + 1}", network="helium",
            flow_class=cls, subtype=sub, slot=slot, block_time=1_774_656_000 + i // 10, day="2026-03-28",
            program_id="hdaoVTCqhfHHo75XdAMxBKdUqvq1i5bF23sisBqVgGR", program="helium_sub_daos",
            instruction="issue_rewards_v0", mint=f"{sym}mint111111111111111111111111111111111", symbol=sym,
            amount_raw=rnd.randrange(1, 10**12), decimals=dec, payer_owner="owner1111111111111111111111111111111111111",
            payer_account="acct11111111111111111111111111111111111111", sub_dao="iot",
        )
        out.append(ev)
    return out


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def day_messages(topics: Topics, seed: int = 7) -> list[OutMessage]:
    """What the listener's real processor publishes for one simulated day (backfill, finalized):
    flows, instruction records and dead letters in their real ratio and shapes."""
    from indexer.devchain.ledger import SimConfig, generate_ledger
    from indexer.devchain.render import get_transaction_result
    from indexer.sources.types import FetchedTx
    from pipelines.listen.processor import KafkaProcessor

    proc = KafkaProcessor(None, topics)
    out: list[OutMessage] = []
    for block in generate_ledger(SimConfig(seed=seed)).blocks:
        for tx in block.transactions:
            result = get_transaction_result(tx, "base64", True)
            msgs, _ids, _net = proc.messages_for(FetchedTx(tx.signature, block.slot, block.block_time,
                                                           "finalized", result, "backfill"))
            out.extend(msgs)
    return out


def make_messages(topics: Topics, n: int, mix: str) -> list[OutMessage]:
    """n messages: the simulated day repeated, each copy under new signatures (its last 4 characters
    replaced, in key and value alike, so event ids stay unique), or synthetic flows (--mix flows)."""
    if mix == "flows":
        return [flow_message(topics.flows, ev) for ev in make_events(n)]
    day = day_messages(topics)
    out: list[OutMessage] = []
    copy = 0
    while len(out) < n:
        tag = "".join(B58[(copy // 58 ** k) % 58] for k in range(4)).encode()
        for m in day[:n - len(out)]:
            new = m.key[:-4] + tag
            out.append(OutMessage(m.topic, new, m.value.replace(m.key, new), m.headers))
        copy += 1
    return out


def produce(bootstrap: str, messages: list[OutMessage], client: str) -> float:
    """Write the messages (value + headers, lz4) as the listener does; returns msg/s."""
    n = len(messages)
    t = time.perf_counter()
    if client == "kafka-python":
        producer = make_producer(bootstrap, linger_ms=20, batch_size=1024 * 1024)
        for m in messages:
            producer.send(m.topic, key=m.key, value=m.value, headers=m.headers)
        producer.flush()
        producer.close()
    else:                                  # the listener's default producer (pipelines.listen.publisher)
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "compression.type": "lz4",
                             "linger.ms": 20, "batch.size": 1024 * 1024, "enable.idempotence": False,
                             "queue.buffering.max.messages": 1_000_000})
        for m in messages:
            while True:
                try:
                    producer.produce(m.topic, value=m.value, key=m.key, headers=m.headers)
                    break
                except BufferError:
                    producer.poll(0.05)
        if producer.flush(120) > 0:
            raise RuntimeError("producer did not deliver every message")
    return n / (time.perf_counter() - t)


def bench_sink(data: Path, n: int, batch_rows: int, json_flows: bool = True, kafka_client: str = "auto",
               run: int = 0, mix: str = "day") -> dict:
    with LocalBroker(data / f"broker{run}") as broker:
        topics = Topics("bench")
        ensure_topics(broker.bootstrap, topics.all(), partitions=3)
        messages = make_messages(topics, n, mix)
        produce_rate = produce(broker.bootstrap, messages, kafka_client)
        del messages
        cfg = SinkConfig(bootstrap=broker.bootstrap, clickhouse_dsn=chdb_dsn(data / "ch"), database=f"bench{run}",
                         topic_prefix="bench", group_id="bench", batch_rows=batch_rows, batch_seconds=5.0,
                         max_poll_records=batch_rows, json_flows=json_flows, kafka_client=kafka_client)
        sink = Sink(cfg)
        sink.start()                      # connect, migrate, subscribe (the group join happens in the first polls)
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        stats = sink.run_until_idle(idle_seconds=1.0, timeout=3600)
        wall_with_join = time.perf_counter() - t0 - 1.0
        cpu = time.process_time() - c0
    rows = sum(stats.rows.values())
    wall = stats.last_commit_at - stats.first_fetch_at
    inner = stats.parse_seconds + stats.write_seconds + stats.commit_seconds
    return {"events": n, "rows": rows, "batches": stats.batches, "produce_msgs_per_s": produce_rate,
            "end_to_end_rows_per_s": rows / wall, "with_join_rows_per_s": rows / wall_with_join,
            "join_s": stats.first_fetch_at - t0, "sink_rows_per_s": rows / inner,
            "write_rows_per_s": rows / stats.write_seconds, "cpu_s": cpu, "wall_s": wall, "poll_s": stats.poll_seconds,
            "json_rows": stats.json_rows, "json_refused": stats.json_refused, "parse_s": stats.parse_seconds,
            "write_s": stats.write_seconds, "commit_s": stats.commit_seconds, "load": load,
            "client": sink._consumer.name if sink._consumer else kafka_client, "tables": dict(stats.rows),
            "dead_letters": stats.dead_letters, "mix": mix}


# ------------------------------------------------------------------------------ floors (--floor)

FLOOR_SETTINGS = {"input_format_skip_unknown_fields": 1, "input_format_json_read_objects_as_strings": 1,
                  "input_format_json_read_arrays_as_strings": 1, "input_format_parallel_parsing": 0,
                  "optimize_on_insert": 0, "input_format_null_as_default": 1}


def _fetch_consumer(bootstrap: str, topics: list[str]):
    """A librdkafka consumer assigned every partition from offset 0: no group join in the figures."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer
    from confluent_kafka import TopicPartition as CTP

    from pipelines.kafka.client import CONFLUENT_CONSUMER_DEFAULTS

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"floor-{time.monotonic_ns()}",
                  **CONFLUENT_CONSUMER_DEFAULTS})
    c.assign([CTP(t, p, OFFSET_BEGINNING) for t in topics for p in range(3)])
    return c


def _table_of(topic_kind: str, value: bytes) -> str:
    from pipelines.sink.service import value_table
    return "instructions" if topic_kind == "instructions" else (value_table(value) or "other_flows")


def floor_fetch(bootstrap: str, topics: list[str], n: int, batch_rows: int) -> dict:
    """(a) consume n messages in batches, touching each value; nothing else."""
    from confluent_kafka import Message

    c = _fetch_consumer(bootstrap, topics)
    got, t0, c0 = 0, None, 0.0
    while got < n:
        msgs = c.consume(num_messages=min(batch_rows, n - got), timeout=1.0)
        if msgs and t0 is None:
            t0, c0 = time.perf_counter(), time.process_time()
        got += len(list(map(Message.value, msgs)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    c.close()
    return {"rows": got, "wall": wall, "cpu": cpu}


_STRUCTURE: dict[tuple[str, str], str] = {}


def _insert_payloads(client, db: str, by_table: dict[str, list[bytes]]) -> None:
    """One JSONEachRow payload per table, raw values, no checks (chdb reads it from a file)."""
    from pipelines.sink.jsonflows import settings_clause, write_payload

    for table, values in by_table.items():
        structure = _STRUCTURE.get((db, table))
        if structure is None:           # the table's own columns: positional INSERT ... SELECT *
            cols = client.query(f"SELECT name, type FROM system.columns WHERE database = '{db}' "
                                f"AND table = '{table}' ORDER BY position").result_rows
            # LowCardinality read as String, as the sink's statements do (reading JSON straight into a
            # LowCardinality column costs ~2 us more per row here); the insert converts
            structure = ", ".join(f"{n} {t}".replace("LowCardinality(String)", "String")
                                  for n, t in cols).replace("'", "\\'")
            _STRUCTURE[(db, table)] = structure
        path = write_payload(b"\n".join(values))
        try:
            client.command(f"INSERT INTO {db}.{table} SELECT * FROM file('{path}', 'JSONEachRow', '{structure}')"
                           + settings_clause(FLOOR_SETTINGS))        # as the sink (writer.insert_json)
        finally:
            os.unlink(path)


def _batches(messages: list[OutMessage], batch_rows: int):
    for at in range(0, len(messages), batch_rows):
        by: dict[str, list[bytes]] = {}
        for m in messages[at:at + batch_rows]:
            if m.topic.split(".")[1] in ("flows", "instructions"):
                by.setdefault(_table_of(m.topic.split(".")[1], m.value), []).append(m.value)
        yield by


def floor_insert(client, db: str, messages: list[OutMessage], batch_rows: int) -> dict:
    """(b) the raw values of each batch into the real tables, one payload per table."""
    batches = list(_batches(messages, batch_rows))        # grouping is not part of the insert
    rows = sum(len(v) for b in batches for v in b.values())
    t0, c0 = time.perf_counter(), time.process_time()
    for by in batches:
        _insert_payloads(client, db, by)
    return {"rows": rows, "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def floor_both(client, db: str, bootstrap: str, topics: list[str], n: int, batch_rows: int) -> dict:
    """(c) fetch + insert: batches of raw values inserted in a thread while the next is fetched."""
    from concurrent.futures import ThreadPoolExecutor

    from confluent_kafka import Message

    c = _fetch_consumer(bootstrap, topics)
    pool = ThreadPoolExecutor(max_workers=1)
    pending, got, rows, t0, c0 = None, 0, 0, None, 0.0
    by: dict[str, list[bytes]] = {}
    held = 0
    while got < n:
        msgs = c.consume(num_messages=min(batch_rows - held, n - got), timeout=1.0)
        if msgs and t0 is None:
            t0, c0 = time.perf_counter(), time.process_time()
        got += len(msgs)
        held += len(msgs)
        for topic, run in groupby(msgs, Message.topic):
            kind = topic.split(".")[1]
            if kind == "instructions":
                by.setdefault("instructions", []).extend(map(Message.value, run))
            elif kind == "flows":
                values = list(map(Message.value, run))
                from pipelines.sink.service import route_flows
                for table, vs in route_flows(values, values).items():
                    by.setdefault(table or "other_flows", []).extend(vs)
        if held >= batch_rows or got >= n:
            if pending is not None:
                pending.result()
            rows += sum(map(len, by.values()))
            pending = pool.submit(_insert_payloads, client, db, by)
            by, held = {}, 0
    if pending is not None:
        pending.result()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    pool.shutdown()
    c.close()
    return {"rows": rows, "wall": wall, "cpu": cpu}


def bench_floor(data: Path, n: int, batch_rows: int, runs: int, mix: str) -> None:
    with LocalBroker(data / "broker-floor") as broker:
        topics = Topics("bench")
        ensure_topics(broker.bootstrap, topics.all(), partitions=3)
        messages = make_messages(topics, n, mix)
        produce(broker.bootstrap, messages, "confluent")
        client = get_client(chdb_dsn(data / "ch"))
        names = [topics.flows, topics.instructions, topics.deadletter]
        results: dict[str, list[dict]] = {"a": [], "b": [], "c": []}
        for run in range(runs):
            load = os.getloadavg()[0]
            results["a"].append({**floor_fetch(broker.bootstrap, names, n, batch_rows), "load": load})
            for key in ("b", "c"):
                db = f"floor{key}{run}"
                client.command(f"DROP DATABASE IF EXISTS {db} SYNC")
                migrate(client, db)
                load = os.getloadavg()[0]
                if key == "b":
                    r = floor_insert(client, db, messages, batch_rows)
                else:
                    r = floor_both(client, db, broker.bootstrap, names, n, batch_rows)
                results[key].append({**r, "load": load})
                client.command(f"DROP DATABASE IF EXISTS {db} SYNC")
    labels = {"a": "(a) fetch only (confluent consume, values touched)",
              "b": "(b) insert only (one raw JSONEachRow payload per table and batch, no checks)",
              "c": "(c) fetch + insert (insert in a thread while the next batch is fetched)"}
    print(f"floors: {n:,} messages ({mix} mix), batches of {batch_rows:,}, {os.cpu_count()} cores, "
          f"median of {runs}")
    for key, rs in results.items():
        for r in rs:
            print(f"  {key}: {r['rows']:,} rows, {r['rows'] / r['wall']:>10,.0f} rows/s, "
                  f"{r['cpu'] / r['rows'] * 1e6:5.2f} us CPU/row (load at start {r['load']:.1f})")
        print(f"{labels[key]}: median {statistics.median(r['rows'] / r['wall'] for r in rs):,.0f} rows/s, "
              f"{statistics.median(r['cpu'] / r['rows'] * 1e6 for r in rs):.2f} us CPU/row "
              f"(= {statistics.median(r['rows'] / r['cpu'] for r in rs):,.0f} rows per CPU-s)")


def bench_statements(data: Path, sizes: list[int], reps: int) -> None:
    """--statement-cost: the engine's fixed cost per INSERT statement, which a sink pays per table and
    flush however few rows it writes (small live batches, a backfill sink flushing whenever it is drained).
    Instruction records and other_flows rows of the simulated day (100, 1000, all of them) through Writer.insert_json (the sink's statement,
    settings in its SETTINGS clause), the same statement with client.command(settings=...) (the
    clickhouse-connect SET round trips the sink paid before session 4), and a one-row VALUES insert into
    each table (part creation, day-marker MV). Median process CPU of `reps` statements per figure."""
    from pipelines.clickhouse.tables import INSTRUCTIONS, VERSIONED_TABLES
    from pipelines.sink import jsonflows, jsoninstructions
    from pipelines.sink.writer import Writer

    topics = Topics("bench")
    day = day_messages(topics)
    values = {"instructions": [m.value for m in day if m.topic == topics.instructions]}
    values["other_flows"] = [m.value for m in day if m.topic == topics.flows and
                             _table_of("flows", m.value) == "other_flows"]
    client = get_client(chdb_dsn(data / "ch"))
    db = "stmt"
    client.command(f"DROP DATABASE IF EXISTS {db} SYNC")
    migrate(client, db)
    writer = Writer(client, db)
    specs = {"instructions": (INSTRUCTIONS, jsoninstructions),
             "other_flows": (next(s for s in VERSIONED_TABLES if s.name == "other_flows"), jsonflows)}
    ranges = [(0, 2 ** 62)]

    def cpu_ms(fn, *args, **kwargs) -> float:
        c0 = time.process_time()
        fn(*args, **kwargs)
        return (time.process_time() - c0) * 1e3

    print(f"statement cost: median CPU ms per statement of {reps} (load average {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} cores)")
    for table, (spec, module) in specs.items():
        for size in [*(n for n in sizes if n < len(values[table])), len(values[table])]:
            payload = module.payload(values[table][:size])
            figures = {"sink statement": [], "with settings= (before)": []}
            for _ in range(reps):
                figures["sink statement"].append(cpu_ms(writer.insert_json, spec, payload, ranges))
                path = jsonflows.write_payload(payload)
                sql = (jsoninstructions.insert_sql(db, path, ranges) if table == "instructions"
                       else jsonflows.insert_sql(db, spec, path, ranges))
                figures["with settings= (before)"].append(
                    cpu_ms(client.command, sql, settings=module.SETTINGS))
                os.unlink(path)
            for label, ms in figures.items():
                med = statistics.median(ms)
                print(f"  {table:<13} {size:>6,} rows  {label:<24} {med:7.1f} ms  ({med / size * 1e3:8.2f} us/row)")
        values_sql = (f"INSERT INTO {db}.{table} (event_id, signature, network, day, slot, version) "
                      "VALUES ('e', 's', 'helium', '2026-03-28', 1, 5)")
        one = [cpu_ms(client.command, values_sql) for _ in range(reps)]
        print(f"  {table:<13}      1 row   VALUES insert            {statistics.median(one):7.1f} ms")


def print_sink(r: dict, batch_rows: int) -> None:
    print(f"sink: {r['rows']:,} rows ({r['mix']} mix) in {r['batches']} batches of <= {batch_rows:,} "
          f"(kafka client {r['client']}; "
          f"load average at start {r['load']:.1f} on {os.cpu_count()} cores)")
    print(f"  produce (-> tansu):                      {r['produce_msgs_per_s']:>12,.0f} msg/s")
    print(f"  end to end (first fetch -> last commit): {r['end_to_end_rows_per_s']:>12,.0f} rows/s")
    print(f"  ... counting the group join ({r['join_s']:.1f} s):     {r['with_join_rows_per_s']:>12,.0f} rows/s")
    print(f"  sink path (decode+write+commit):         {r['sink_rows_per_s']:>12,.0f} rows/s")
    print(f"  write alone (validate, insert):          {r['write_rows_per_s']:>12,.0f} rows/s")
    print(f"  per CPU second of this process:          {r['rows'] / r['cpu_s']:>12,.0f} rows/s "
          f"({r['cpu_s'] / r['rows'] * 1e6:.1f} us CPU per row, group join included)")
    print(f"  seconds: poll {r['poll_s']:.2f}  decode {r['parse_s']:.2f}  write {r['write_s']:.2f}  "
          f"commit {r['commit_s']:.2f}  (wall {r['wall_s']:.2f}, process CPU {r['cpu_s']:.2f})")
    print(f"  rows parsed by ClickHouse (JSON paths): {r['json_rows']:,}; "
          f"table groups refused to the exact path: {r['json_refused']}; dead letters {r['dead_letters']:,}")
    for table, n in sorted(r["tables"].items()):
        print(f"  {table:<18} {n:>9,} rows  {n / r['wall_s']:>10,.0f} rows/s end to end")


GEN_SQL = """
INSERT INTO {db}.{table}
  (event_id, signature, ix_path, leg, network, flow_class, subtype, day, block_time, slot, epoch, program_id, program,
   instruction, outer_program, outer_instruction, parent_instruction, mint, symbol, decimals, amount_raw, usd, usd_price,
   payer_owner, payer_account, recipient_owner, recipient_account, sub_dao, commitment, reason, rule_version,
   schema_version, version, is_deleted)
SELECT
  concat(hex(sipHash64(number)), hex(sipHash64(number + 1)), ':', toString(number % 7)) AS event_id,
  concat(hex(sipHash64(number)), hex(sipHash64(number + 1))) AS signature,
  toString(number % 7) AS ix_path, NULL AS leg,
  if(number % 5 = 0, 'render', 'helium') AS network,
  {cls_expr} AS flow_class,
  {sub_expr} AS subtype,
  toDate('2025-01-01') + intDiv(number, {per_day}) AS day,
  toDateTime64(toDateTime('2025-01-01 00:00:00', 'UTC') + intDiv(number, {per_day}) * 86400 + number % 86400, 3, 'UTC'),
  300000000 + number AS slot, NULL, 'prog', 'program', 'instr', '', '', '',
  {sym_expr} AS mint, {sym_expr} AS symbol, if({sym_expr} = 'DC', 0, 8) AS decimals,
  toUInt128(sipHash64(number) % 1000000000000) AS amount_raw, NULL, NULL,
  'payer', 'payer_acct', 'recipient', 'recipient_acct', 'iot', 'finalized', '', '2026.11.1', 'v1',
  (300000000 + number) * 4 + 2, 0
FROM numbers({start}, {count})
"""


def bench_invoice(data: Path, flows: int) -> dict:
    client = get_client(chdb_dsn(data / "ch"))
    db = "bench10m"
    client.command(f"DROP DATABASE IF EXISTS {db} SYNC")
    migrate(client, db)
    per_day = max(1, flows // 365)
    # shares: usage 30 %, emissions 20 %, other 50 % of the flows, by number % 10
    parts = [
        ("usage_fees", "'usage_fee'", "['data_transfer','onboarding','location_assert','bme_burn'][number % 4 + 1]",
         "if(number % 5 = 0, 'RENDER', 'DC')", (0, 3)),
        ("emissions", "'emission'", "['rewards_escrow','delegator_pool','hst_pool','mint'][number % 4 + 1]",
         "if(number % 5 = 0, 'RENDER', ['HNT','IOT','MOBILE'][number % 3 + 1])", (3, 5)),
        ("other_flows", "['purchase','distribution','transfer','reversal','other'][number % 5 + 1]",
         "'token_transfer'", "if(number % 5 = 0, 'RENDER', 'HNT')", (5, 10)),
    ]
    t = time.perf_counter()
    chunk = 2_000_000
    for start in range(0, flows, chunk):
        count = min(chunk, flows - start)
        for table, cls_expr, sub_expr, sym_expr, (lo, hi) in parts:
            sql = GEN_SQL.format(db=db, table=table, cls_expr=cls_expr, sub_expr=sub_expr, sym_expr=sym_expr,
                                 per_day=per_day, start=start, count=count)
            client.command(sql + f" WHERE number % 10 >= {lo} AND number % 10 < {hi}")
    generate_s = time.perf_counter() - t
    client.command(f"INSERT INTO {db}.prices (token, day, usd) SELECT token, toDate('2025-01-01') + number, 1.25 "
                   f"FROM numbers(366) ARRAY JOIN ['HNT','IOT','MOBILE','RENDER'] AS token")
    total = client.query(f"SELECT count() FROM {db}.flows").result_rows[0][0]
    q = f"SELECT * FROM {db}.invoice_daily ORDER BY network, day"
    timings = {}
    for label in ("cold", "warm"):
        t = time.perf_counter()
        rows = client.query(q).result_rows
        timings[f"invoice_{label}_s"] = time.perf_counter() - t
    parts_before = client.query(f"SELECT count() FROM system.parts WHERE database = '{db}' AND active").result_rows[0][0]
    t = time.perf_counter()
    for table in ("usage_fees", "emissions", "other_flows"):
        client.command(f"OPTIMIZE TABLE {db}.{table} FINAL")
    optimize_s = time.perf_counter() - t
    t = time.perf_counter()
    client.query(q)
    timings["invoice_after_optimize_s"] = time.perf_counter() - t
    t = time.perf_counter()
    client.query(f"SELECT network, day, flow_class, sum(amount_raw) FROM {db}.flows GROUP BY ALL")
    timings["flows_final_groupby_s"] = time.perf_counter() - t
    return {"flows": int(total), "invoice_rows": len(rows), "generate_s": generate_s, "active_parts": parts_before,
            "optimize_final_s": optimize_s, **timings}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--flows", type=int, default=10_000_000)
    ap.add_argument("--batch-rows", type=int, default=50_000)
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--skip-sink", action="store_true")
    ap.add_argument("--skip-invoice", action="store_true")
    ap.add_argument("--runs", type=int, default=1, help="repeat the sink measurement (fresh broker and database)")
    ap.add_argument("--kafka-client", default="auto", choices=["auto", "confluent", "kafka-python"])
    ap.add_argument("--mix", default="day", choices=["day", "flows"],
                    help="day: the listener's messages of a simulated day, repeated; flows: synthetic flows only")
    ap.add_argument("--floor", action="store_true", help="measure the fetch / insert floors instead of the sink")
    ap.add_argument("--statement-cost", action="store_true",
                    help="measure the engine's fixed CPU cost per INSERT statement (100/1k/10k rows, 1-row VALUES)")
    ap.add_argument("--exact-path", action="store_true",
                    help="flows through the Python column path instead of ClickHouse's JSON parser")
    args = ap.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="depinflow-bench-"))
    print("command:", " ".join([".venv/bin/python", "bench/sink.py", *sys.argv[1:]]))
    try:
        if args.statement_cost:
            bench_statements(data, [100, 1000], args.runs if args.runs > 1 else 7)
            return 0
        if args.floor:
            bench_floor(data, args.events, args.batch_rows, args.runs, args.mix)
            return 0
        if not args.skip_sink:
            results = []
            for run in range(args.runs):
                r = bench_sink(data, args.events, args.batch_rows, json_flows=not args.exact_path,
                               kafka_client=args.kafka_client, run=run, mix=args.mix)
                print_sink(r, args.batch_rows)
                results.append(r)
            if args.runs > 1:
                def median(key):
                    return statistics.median(x[key] for x in results)
                print(f"median of {args.runs} runs: end to end {median('end_to_end_rows_per_s'):,.0f} rows/s; "
                      f"with the group join {median('with_join_rows_per_s'):,.0f} rows/s; "
                      f"{statistics.median(x['rows'] / x['cpu_s'] for x in results):,.0f} rows per CPU second "
                      f"({statistics.median(x['cpu_s'] / x['rows'] * 1e6 for x in results):.1f} us CPU per row)")
                for table in sorted(results[0]["tables"]):
                    print(f"  {table:<18} median {statistics.median(x['tables'][table] / x['wall_s'] for x in results):>10,.0f}"
                          f" rows/s end to end")
        if not args.skip_invoice:
            r = bench_invoice(data, args.flows)
            print(f"invoice_daily over {r['flows']:,} flows ({r['invoice_rows']} network-days, "
                  f"{r['active_parts']} active parts; generated in {r['generate_s']:.1f} s):")
            print(f"  cold {r['invoice_cold_s']:.2f} s, warm {r['invoice_warm_s']:.2f} s, "
                  f"after OPTIMIZE FINAL ({r['optimize_final_s']:.1f} s) {r['invoice_after_optimize_s']:.2f} s; "
                  f"flows GROUP BY {r['flows_final_groupby_s']:.2f} s")
    finally:
        if not args.keep and not args.data_dir:
            shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
