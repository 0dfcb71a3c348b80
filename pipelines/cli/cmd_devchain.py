"""`depinflow devchain serve|truth`: the chain simulator from the command line.

`serve` generates the ledger and serves it over Solana JSON-RPC (HTTP POST + websocket on one
port) until interrupted; `truth` prints the ground truth as JSON lines
`{"network","day","flow_class","subtype","mint","amount_raw"}` sorted by those keys, the same
shape as `depinflow report --totals`, so the two can be diffed line by line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys


def _ledger_args(p: argparse.ArgumentParser) -> None:
    from indexer.devchain.ledger import SimConfig

    d = SimConfig()
    p.add_argument("--seed", type=int, default=d.seed, help="ledger seed (default %(default)s)")
    p.add_argument("--days", type=int, default=d.days, help="simulated UTC days (default %(default)s)")
    p.add_argument("--start-day", default=d.start_day, help="first UTC day, YYYY-MM-DD (default %(default)s)")
    p.add_argument("--slots-per-day", type=int, default=d.slots_per_day,
                   help="blocks per day before skips (time compression, default %(default)s)")
    p.add_argument("--tx-per-slot", type=float, default=d.tx_per_slot,
                   help="mean transactions per block (default %(default)s)")
    p.add_argument("--networks", default=",".join(d.networks), help="comma list (default %(default)s)")
    p.add_argument("--record", action="append", default=[], metavar="FILE",
                   help="also serve a recorded getTransaction JSON (repeatable)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="devchain_command", metavar="ACTION")
    serve = sub.add_parser("serve", help="serve the simulated ledger over JSON-RPC + websocket")
    _ledger_args(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8899, help="HTTP and websocket port (default %(default)s)")
    serve.add_argument("--realtime", action="store_true", help="produce one block every ~400 ms from the start")
    serve.add_argument("--faults", metavar="FILE", help="fault injection config (JSON or YAML)")
    serve.add_argument("--start-at", type=int, default=None,
                       help="initial processed tip as a block position (default: all finalized, or 0 if realtime)")
    truth = sub.add_parser("truth", help="print the ground-truth totals as JSON lines")
    _ledger_args(truth)
    truth.add_argument("--events", action="store_true", help="print every expected event instead of totals")
    truth.add_argument("--discovery", choices=["addresses", "all"], default="addresses",
                       help="addresses (default): what depinflow listen/run can discover through the watched "
                            "addresses, i.e. what `depinflow report --totals` shows after a run; all: every "
                            "generated event, incl. plain RENDER Transfers between holders that name no watched "
                            "address")


def _config(args):
    from indexer.devchain.ledger import SimConfig

    return SimConfig(seed=args.seed, days=args.days, start_day=args.start_day, slots_per_day=args.slots_per_day,
                     tx_per_slot=args.tx_per_slot,
                     networks=tuple(n for n in args.networks.split(",") if n))


def _ledger(args):
    from indexer.devchain.ledger import generate_ledger

    ledger = generate_ledger(_config(args))
    for path in args.record:
        with open(path) as f:
            ledger.add_recorded(json.load(f))
    return ledger


def run(args) -> int:
    if args.devchain_command == "truth":
        ledger = _ledger(args)
        rows = ledger.expected_events() if args.events else ledger.truth_lines(args.discovery)
        out = sys.stdout
        for row in rows:
            out.write(json.dumps(row) + "\n")   # key order as in the flow rules: network, day, ...

        return 0
    if args.devchain_command == "serve":
        return asyncio.run(_serve(args))
    print("usage: depinflow devchain {serve,truth} ...", file=sys.stderr)
    return 2


async def _serve(args) -> int:
    from indexer.devchain.faults import FaultConfig
    from indexer.devchain.server import start_server

    faults = FaultConfig.load(args.faults) if args.faults else None
    ledger = _ledger(args)
    server, runner, port = await start_server(ledger, args.host, args.port, faults, args.realtime,
                                              start_at=args.start_at)
    print(f"devchain: {ledger.tx_count()} transactions in {len(ledger.blocks)} blocks, slots "
          f"{ledger.first_slot}..{ledger.last_slot}; serving http://{args.host}:{port} and ws://{args.host}:{port}"
          f"{' (realtime)' if args.realtime else ''}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
    return 0
