"""Benchmark the chain simulator: ledger generation rate, getTransaction requests/s and getBlock
MB/s served by one server process pinned to one core.

The server runs as `depinflow devchain serve` in a child process pinned to CPU 0 (asyncio, one
thread); the load generator (aiohttp, raw JSON-RPC, N concurrent requests) is pinned to CPU 1 when
the machine has one. Each figure is measured twice: "cold" (first request renders and caches the
JSON) and "warm" (served from the per-transaction / per-block cache). Requests are bounded in count
and time and go to 127.0.0.1 only.

    .venv/bin/python bench/devchain.py                      # >= 100k transactions (default)
    .venv/bin/python bench/devchain.py --days 1 --slots-per-day 3000 --requests 5000   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _rpc(session, url, method, params):
    async with session.post(url, data=orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                                    "params": params}),
                            headers={"Content-Type": "application/json"}) as r:
        body = await r.read()
    return body


async def _load(url: str, calls: list[tuple[str, list]], concurrency: int, time_limit: float):
    """Run the calls over `concurrency` keep-alive connections with a minimal HTTP/1.1 client
    (aiohttp's client costs more CPU than the server being measured). Returns (completed, bytes,
    seconds, errors)."""
    host, port = url.split("//")[1].split(":")
    it = iter(calls)
    done = 0
    nbytes = 0
    errors = 0
    deadline = time.perf_counter() + time_limit

    async def worker():
        nonlocal done, nbytes, errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for method, params in it:
                if time.perf_counter() > deadline:
                    return
                body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
                writer.write(b"POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n" % (host.encode(), len(body)) + body)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                payload = await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 200") or b'"error"' in payload[:64]:
                    errors += 1
                nbytes += length
                done += 1
        finally:
            writer.close()

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, nbytes, time.perf_counter() - t, errors


async def _collect(url: str, max_blocks: int):
    async with aiohttp.ClientSession() as s:
        first = orjson.loads(await _rpc(s, url, "getFirstAvailableBlock", []))["result"]
        last = orjson.loads(await _rpc(s, url, "getSlot", [{"commitment": "finalized"}]))["result"]
        slots = []
        start = first
        while start <= last:
            end = min(start + 499_999, last)
            slots += orjson.loads(await _rpc(s, url, "getBlocks", [start, end]))["result"]
            start = end + 1
        sigs = []
        for slot in slots[:max_blocks]:
            res = orjson.loads(await _rpc(s, url, "getBlock", [slot, {
                "transactionDetails": "signatures", "rewards": False, "maxSupportedTransactionVersion": 0}]))
            sigs += res["result"]["signatures"]
        return slots, sigs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--days", type=int, default=4)
    ap.add_argument("--slots-per-day", type=int, default=10_000)
    ap.add_argument("--tx-per-slot", type=float, default=2.7)
    ap.add_argument("--requests", type=int, default=30_000, help="getTransaction requests per pass")
    ap.add_argument("--blocks", type=int, default=3_000, help="getBlock requests per pass")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds per pass at most")
    args = ap.parse_args(argv)
    ncpu = os.cpu_count() or 1
    port = _free_port()
    cmd = [sys.executable, "-m", "pipelines.cli.main", "devchain", "serve", "--port", str(port),
           "--seed", str(args.seed), "--days", str(args.days), "--slots-per-day", str(args.slots_per_day),
           "--tx-per-slot", str(args.tx_per_slot)]
    print("command: .venv/bin/python bench/devchain.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(f"server: {' '.join(cmd[1:])} (pinned to CPU 0)")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True,
                            preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if hasattr(os, "sched_setaffinity")
                            else None)
    try:
        banner = proc.stdout.readline().strip()
        gen_s = time.perf_counter() - t0
        print(banner)
        ntx = int(banner.split()[1])
        print(f"generation + index: {gen_s:.1f} s for {ntx} transactions ({ntx / gen_s:,.0f} tx/s, includes "
              f"interpreter start)")
        if ncpu > 1 and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {1})
        url = f"http://127.0.0.1:{port}"
        slots, sigs = asyncio.run(_collect(url, max_blocks=10**9))
        print(f"collected {len(slots)} blocks, {len(sigs)} signatures")
        tx_calls = {enc: [("getTransaction", [s, {"encoding": enc, "maxSupportedTransactionVersion": 0}])
                          for s in sigs[: args.requests]] for enc in ("base64", "jsonParsed")}
        step = max(1, len(slots) // args.blocks)
        picked = slots[::step][: args.blocks]
        block_calls = {enc: [("getBlock", [s, {"encoding": enc, "maxSupportedTransactionVersion": 0,
                                               "rewards": False}]) for s in picked]
                       for enc in ("base64", "json")}
        print("req/s and MB/s are wall-clock figures; 'per CPU-s' divides by the server's own CPU time, i.e.\n"
              "what one fully used core serves (robust when the client or other load limits the wall clock).")
        print(f"{'measure':<34}{'requests':>9}{'seconds':>9}{'req/s':>10}{'MB/s':>9}{'server CPU%':>12}"
              f"{'req/CPU-s':>11}{'MB/CPU-s':>10}")
        for label, calls in [("getTransaction base64", tx_calls["base64"]),
                             ("getTransaction jsonParsed", tx_calls["jsonParsed"]),
                             ("getBlock base64 (full)", block_calls["base64"]),
                             ("getBlock json (full)", block_calls["json"])]:
            for phase in ("cold", "warm"):
                cpu0 = _cpu_seconds(proc.pid)
                done, nbytes, secs, errors = asyncio.run(_load(url, calls, args.concurrency, args.time_limit))
                cpu = _cpu_seconds(proc.pid) - cpu0
                cpu = max(cpu, 1e-9)
                print(f"{label + ' ' + phase:<34}{done:>9}{secs:>9.2f}{done / secs:>10,.0f}"
                      f"{nbytes / secs / 1e6:>9.1f}{100 * cpu / secs:>11.0f}%{done / cpu:>11,.0f}"
                      f"{nbytes / cpu / 1e6:>10.1f}" + (f"  errors={errors}" if errors else ""))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
