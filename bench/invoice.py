"""Benchmark of `invoice_daily` over N flows: the plain FINAL view (session 1) vs the materialized rollup.

The flows are generated inside ClickHouse (INSERT ... SELECT FROM numbers(), in chunks, so the tables
hold unmerged parts like a sink leaves them): two networks, a year of days, every flow class, prices
for every day. Then, each figure the median of --repeat runs, with CPU seconds of this process (chdb
runs in-process, so that is the engine's CPU) next to wall seconds:

1. `invoice_daily` through the session-1 definition (every day aggregated from FINAL at query time),
   created here as `invoice_daily_final` from migration 0006's text; cold = mark, uncompressed and
   query-condition caches dropped first (the OS page cache is not dropped: the machine is shared);
2. the full rollup refresh (`refresh_rollups(full=True)`: every day recomputed from FINAL);
3. `invoice_daily` with every day settled (served from flows_daily_rollup), cold and warm;
4. the live tail: one day touched by a new event -> the query with that day unsettled (read live),
   and the incremental refresh that settles it again;
5. with --optimize: OPTIMIZE TABLE ... FINAL on the flow tables, then 1 and 3 again.

The background refresh (refreshable MV, every 30 s) is stopped during the measurements so that it
does not run concurrently with them; the refreshes measured are the same SQL run on demand.

Run:  .venv/bin/python bench/invoice.py [--flows 10000000] [--repeat 3] [--optimize] [--data-dir DIR --keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.local.clickhouse import chdb_dsn, get_client  # noqa: E402
from pipelines.clickhouse.migrate import Layout, load_migrations, migrate, render, split_statements  # noqa: E402
from pipelines.clickhouse.rollups import REFRESH_VIEW, refresh_rollups, rollup_state  # noqa: E402

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

# shares: usage 30 %, emissions 20 %, other 50 % of the flows, by number % 10
PARTS = [
    ("usage_fees", "'usage_fee'", "['data_transfer','onboarding','location_assert','bme_burn'][number % 4 + 1]",
     "if(number % 5 = 0, 'RENDER', 'DC')", (0, 3)),
    ("emissions", "'emission'", "['rewards_escrow','delegator_pool','hst_pool','mint'][number % 4 + 1]",
     "if(number % 5 = 0, 'RENDER', ['HNT','IOT','MOBILE'][number % 3 + 1])", (3, 5)),
    ("other_flows", "['purchase','distribution','transfer','reversal','other'][number % 5 + 1]",
     "'token_transfer'", "if(number % 5 = 0, 'RENDER', 'HNT')", (5, 10)),
]
FLOW_TABLES = ("usage_fees", "emissions", "other_flows")
DROP_CACHES = ("SYSTEM DROP MARK CACHE", "SYSTEM DROP UNCOMPRESSED CACHE", "SYSTEM DROP QUERY CONDITION CACHE")


def generate(client, db: str, flows: int) -> float:
    """Fill the three flow tables with `flows` events in 2M-row chunks; returns seconds."""
    per_day = max(1, flows // 365)
    t = time.perf_counter()
    chunk = 2_000_000
    for start in range(0, flows, chunk):
        count = min(chunk, flows - start)
        for table, cls_expr, sub_expr, sym_expr, (lo, hi) in PARTS:
            sql = GEN_SQL.format(db=db, table=table, cls_expr=cls_expr, sub_expr=sub_expr, sym_expr=sym_expr,
                                 per_day=per_day, start=start, count=count)
            client.command(sql + f" WHERE number % 10 >= {lo} AND number % 10 < {hi}")
    client.command(f"INSERT INTO {db}.prices (token, day, usd) SELECT token, toDate('2025-01-01') + number, 1.25 "
                   f"FROM numbers(366) ARRAY JOIN ['HNT','IOT','MOBILE','RENDER'] AS token")
    return time.perf_counter() - t


def create_final_views(client, db: str) -> None:
    """The session-1 read side (migration 0006: every rollup aggregated from FINAL at query time) under
    `*_final` names, for the comparison."""
    (v6,) = [m for m in load_migrations() if m.version == 6]
    text = (v6.text.replace("${db}.flows_daily ", "${db}.flows_daily_final ")
            .replace("${db}.flows_daily\n", "${db}.flows_daily_final\n")
            .replace("${db}.invoice_daily ", "${db}.invoice_daily_final ")
            .replace("${db}.usage_fees_daily ", "${db}.usage_fees_daily_final ")
            .replace("${db}.emissions_daily ", "${db}.emissions_daily_final "))
    for statement in split_statements(render(text, Layout(db))):
        if "_final" in statement.split("AS", 1)[0]:
            client.command(statement)


def timed(fn: Callable[[], object], repeat: int, before: Callable[[], None] | None = None) -> dict:
    """Median wall and CPU seconds of `repeat` runs of fn (before() runs untimed ahead of each)."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        if before:
            before()
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "walls": walls, "result": result}


def fmt(label: str, r: dict) -> str:
    runs = ", ".join(f"{w:.3f}" for w in r["walls"])
    return f"  {label:<52} {r['wall']:>8.3f} s wall  {r['cpu']:>8.3f} s CPU   (runs: {runs})"


def run(data: Path, flows: int, repeat: int, optimize: bool) -> None:
    client = get_client(chdb_dsn(data / "ch"))
    db = "bench_invoice"
    client.command(f"DROP DATABASE IF EXISTS {db} SYNC")
    migrate(client, db)
    client.command(f"SYSTEM STOP VIEW {db}.{REFRESH_VIEW}")   # measured on demand below, not in the background
    create_final_views(client, db)
    print(f"load average at start: {open('/proc/loadavg').read().split()[:3]} on {os.cpu_count()} cores")
    gen_s = generate(client, db, flows)
    total = client.query(f"SELECT count() FROM {db}.flows").result_rows[0][0]
    parts = client.query(f"SELECT count() FROM system.parts WHERE database = '{db}' AND active "
                         f"AND table IN {FLOW_TABLES}").result_rows[0][0]
    print(f"{total:,} flows generated in {gen_s:.1f} s ({parts} active parts in the flow tables)")

    def drop_caches() -> None:
        for q in DROP_CACHES:
            client.command(q)

    def invoice(view: str) -> Callable[[], int]:
        return lambda: len(client.query(f"SELECT * FROM {db}.{view} ORDER BY network, day").result_rows)

    def checksum(view: str) -> list:
        return client.query(f"SELECT * FROM {db}.{view} ORDER BY network, day").result_rows

    def read_side(tag: str) -> None:
        print(f"invoice_daily [{tag}], median of {repeat}:")
        print(fmt("plain FINAL view, cold", timed(invoice("invoice_daily_final"), repeat, drop_caches)))
        print(fmt("plain FINAL view, warm", timed(invoice("invoice_daily_final"), repeat)))
        print(fmt("materialized rollup (all days settled), cold", timed(invoice("invoice_daily"), repeat, drop_caches)))
        print(fmt("materialized rollup (all days settled), warm", timed(invoice("invoice_daily"), repeat)))

    print(f"load average before the refresh: {open('/proc/loadavg').read().split()[:3]}")
    full = timed(lambda: refresh_rollups(client, db, full=True, grace_seconds=0), repeat)
    state = rollup_state(client, db)
    print(f"rollup refresh, median of {repeat}:")
    print(fmt(f"full refresh ({state.days} network-days from FINAL)", full))
    assert state.unsettled == 0, state
    rows = len(checksum("invoice_daily"))
    assert checksum("invoice_daily") == checksum("invoice_daily_final"), "rollup and FINAL view disagree"
    print(f"  invoice_daily == invoice_daily_final on all {rows} network-days")
    read_side("unmerged parts")

    # live tail: one new event on the last day, read live until the next refresh settles it
    last_day = client.query(f"SELECT max(day) FROM {db}.usage_fees").result_rows[0][0]

    def touch() -> None:
        client.command(f"INSERT INTO {db}.usage_fees (event_id, network, day, flow_class, subtype, mint, symbol, "
                       f"decimals, amount_raw, version) VALUES (concat('tail-', toString(rand64())), 'helium', "
                       f"'{last_day}', 'usage_fee', 'data_transfer', 'DC', 'DC', 0, 1000, 1)")

    tail_query = timed(invoice("invoice_daily"), repeat, touch)
    assert rollup_state(client, db).unsettled == 1
    tail_refresh = timed(lambda: refresh_rollups(client, db, grace_seconds=0), repeat, touch)
    assert rollup_state(client, db).unsettled == 0
    idle_refresh = timed(lambda: refresh_rollups(client, db, grace_seconds=0), repeat)
    print(f"live tail (one day touched since the last refresh), median of {repeat}:")
    print(fmt("invoice_daily with 1 unsettled day (read live)", tail_query))
    print(fmt("incremental refresh of 1 day", tail_refresh))
    print(fmt("refresh with nothing to do", idle_refresh))
    assert checksum("invoice_daily") == checksum("invoice_daily_final")

    if optimize:
        t = time.perf_counter()
        for table in FLOW_TABLES:
            client.command(f"OPTIMIZE TABLE {db}.{table} FINAL")
        print(f"OPTIMIZE TABLE ... FINAL on the flow tables: {time.perf_counter() - t:.1f} s")
        read_side("after OPTIMIZE FINAL")
    print(f"load average at the end: {open('/proc/loadavg').read().split()[:3]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--optimize", action="store_true", help="also measure after OPTIMIZE TABLE ... FINAL")
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="depinflow-bench-invoice-"))
    print("command:", " ".join([".venv/bin/python", "bench/invoice.py", *sys.argv[1:]]))
    try:
        run(data, args.flows, args.repeat, args.optimize)
    finally:
        if not args.keep and not args.data_dir:
            shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
