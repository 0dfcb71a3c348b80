"""The read-only query endpoint: latency, result throughput, and what it costs the sink.

Run:  .venv/bin/python bench/query_endpoint.py [--rows 1000000] [--seconds 3]

On a fresh embedded ClickHouse (temp dir) with `--rows` flow-like rows, prints:
* SELECT 1 round trip (ms, p50/p95) over the endpoint with clickhouse-connect, and with plain
  HTTP (urllib, TabSeparated) - each query opens a fresh read-only engine handle;
* a full-table fetch in Native through the endpoint vs the in-process chdb client (rows/s);
* an aggregate (GROUP BY day, network) through the endpoint (ms);
* sink-side insert throughput (1,000-row batches) alone and while two threads query the endpoint
  continuously - the endpoint must not stall the writer sharing the process.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import clickhouse_connect  # noqa: E402

from infra.local.clickhouse import chdb_dsn, get_client  # noqa: E402
from pipelines.query import start_query_endpoint  # noqa: E402

DDL = """CREATE TABLE bench.flows (event_id String, network LowCardinality(String), day Date,
  amount_raw UInt128, usd Nullable(Decimal(38, 12))) ENGINE = ReplacingMergeTree ORDER BY (network, day, event_id)"""


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


def timed_loop(fn, seconds: float) -> list[float]:
    out, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def insert_rate(client, seconds: float, start: int) -> float:
    rows, n, end = 0, start, time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        batch = [[f"w{n + i}" for i in range(1000)], ["helium"] * 1000, [19800] * 1000,
                 list(range(1000)), [None] * 1000]
        client.insert("bench.flows", batch, column_names=["event_id", "network", "day", "amount_raw", "usd"],
                      column_oriented=True)
        rows += 1000
        n += 1000
    return rows / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="depinflow-bench-query-")
    client = get_client(chdb_dsn(Path(tmp) / "clickhouse"))
    client.command("CREATE DATABASE bench")
    client.command(DDL)
    client.command(f"INSERT INTO bench.flows SELECT concat('e', toString(number)), if(number % 3 = 0, 'render', "
                   f"'helium'), toDate('2026-03-01') + number % 30, number, number / 1000 FROM numbers({args.rows})")
    ep = start_query_endpoint(client)
    http = clickhouse_connect.get_client(host="127.0.0.1", port=ep.port)

    p50, p95 = percentiles(timed_loop(lambda: http.query("SELECT 1"), args.seconds))
    print(f"SELECT 1 via endpoint, clickhouse-connect: p50 {p50:.2f} ms, p95 {p95:.2f} ms")
    url = f"{ep.url}/?query=" + urllib.parse.quote("SELECT 1")
    p50, p95 = percentiles(timed_loop(lambda: urllib.request.urlopen(url).read(), args.seconds))
    print(f"SELECT 1 via endpoint, plain HTTP:       p50 {p50:.2f} ms, p95 {p95:.2f} ms")

    sql = "SELECT event_id, network, day, amount_raw, usd FROM bench.flows"
    t = time.perf_counter()
    n = len(http.query(sql).result_rows)
    via = time.perf_counter() - t
    t = time.perf_counter()
    n_direct = len(client.query(sql).result_rows)
    direct = time.perf_counter() - t
    print(f"full fetch {n:,} rows (Native): endpoint {n / via:,.0f} rows/s ({via:.2f} s), "
          f"in-process client {n_direct / direct:,.0f} rows/s ({direct:.2f} s)")
    agg = "SELECT day, network, count(), sum(amount_raw), sum(usd) FROM bench.flows FINAL GROUP BY day, network"
    p50, _ = percentiles(timed_loop(lambda: http.query(agg), args.seconds))
    print(f"GROUP BY day, network over {args.rows:,} rows FINAL via endpoint: p50 {p50:.1f} ms")

    alone = insert_rate(client, args.seconds, 10**9)
    stop = threading.Event()

    def reader() -> None:
        c = clickhouse_connect.get_client(host="127.0.0.1", port=ep.port)
        while not stop.is_set():
            c.query("SELECT count() FROM bench.flows WHERE network = 'helium'")

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for th in threads:
        th.start()
    loaded = insert_rate(client, args.seconds, 2 * 10**9)
    stop.set()
    for th in threads:
        th.join()
    print(f"sink-style inserts (1,000-row batches): alone {alone:,.0f} rows/s, with 2 endpoint readers "
          f"{loaded:,.0f} rows/s")
    ep.stop()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpu(s), Python {platform.python_version()}")
    print("command: .venv/bin/python bench/query_endpoint.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
