"""Benchmark of the sink and the invoice view on the embedded engines.

1. Throughput: N flow events are produced to a local tansu broker with the listener's encoding
   (pipelines.kafka.messages.flow_message: value + headers), then one Sink (batches of 50k) drains
   them into embedded ClickHouse (chdb). Printed: end-to-end rows/s (first fetch to last commit; the
   consumer-group join, ~5 s on tansu once per process, is printed apart and in a second figure), the
   sink's own rows/s (routing/decoding + write + commit seconds, without the Kafka fetch), the write
   step alone, and rows per CPU second (less sensitive to a shared machine). The write of a batch runs
   in a writer thread while the next batch is fetched, so "write" seconds are time in flight and
   overlap "poll" seconds: end to end is the figure that counts. Flows go through ClickHouse's JSON
   parser (sink/jsonflows.py); --exact-path measures the Python column path instead.
2. invoice_daily over 10 million flows generated in ClickHouse with INSERT ... SELECT FROM numbers()
   (two networks, a year of days, every flow class), cold and warm, before and after merges.

Run:  .venv/bin/python bench/sink.py [--events 500000] [--flows 10000000] [--batch-rows 50000] [--exact-path]
      [--runs 3] [--kafka-client auto|confluent|kafka-python] [--skip-invoice]
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.networks.events import FlowEvent  # noqa: E402
from infra.local.broker import LocalBroker  # noqa: E402
from infra.local.clickhouse import chdb_dsn, get_client  # noqa: E402
from pipelines.clickhouse.migrate import migrate  # noqa: E402
from pipelines.kafka.client import make_producer  # noqa: E402
from pipelines.kafka.messages import flow_message  # noqa: E402
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


def produce(bootstrap: str, topic: str, n: int, client: str) -> float:
    """Write n flow events with the listener's encoding (value + headers, lz4); returns msg/s."""
    messages = [flow_message(topic, ev) for ev in make_events(n)]
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
               run: int = 0) -> dict:
    with LocalBroker(data / f"broker{run}") as broker:
        topics = Topics("bench")
        ensure_topics(broker.bootstrap, topics.all(), partitions=3)
        produce_rate = produce(broker.bootstrap, topics.flows, n, kafka_client)
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
            "client": sink._consumer.name if sink._consumer else kafka_client}


def print_sink(r: dict, batch_rows: int) -> None:
    print(f"sink: {r['rows']:,} rows in {r['batches']} batches of <= {batch_rows:,} (kafka client {r['client']}; "
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
    print(f"  flow rows parsed by ClickHouse (JSON path): {r['json_rows']:,}; "
          f"table groups refused to the exact path: {r['json_refused']}")


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
    ap.add_argument("--exact-path", action="store_true",
                    help="flows through the Python column path instead of ClickHouse's JSON parser")
    args = ap.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="depinflow-bench-"))
    print("command:", " ".join([".venv/bin/python", "bench/sink.py", *sys.argv[1:]]))
    try:
        if not args.skip_sink:
            results = []
            for run in range(args.runs):
                r = bench_sink(data, args.events, args.batch_rows, json_flows=not args.exact_path,
                               kafka_client=args.kafka_client, run=run)
                print_sink(r, args.batch_rows)
                results.append(r)
            if args.runs > 1:
                def median(key):
                    return statistics.median(x[key] for x in results)
                print(f"median of {args.runs} runs: end to end {median('end_to_end_rows_per_s'):,.0f} rows/s; "
                      f"with the group join {median('with_join_rows_per_s'):,.0f} rows/s; "
                      f"{statistics.median(x['rows'] / x['cpu_s'] for x in results):,.0f} rows per CPU second")
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
