"""`depinflow run`: the main job on the embedded default.

Starts the local broker (child process), opens the embedded ClickHouse, runs listener and sink
together and serves read-only SQL on loopback. Without --rpc-url / SOLANA_RPC_URL it indexes the
built-in chain simulator, so it works offline with no key. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from infra.local.state import default_data_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="broker log, checkpoints and ClickHouse data (default $DEPINFLOW_DATA_DIR or ./.depinflow)")
    parser.add_argument("--rpc-url", default=os.environ.get("SOLANA_RPC_URL"),
                        help="Solana JSON-RPC endpoint (default $SOLANA_RPC_URL; none: the built-in simulator)")
    parser.add_argument("--ws-url", default=os.environ.get("SOLANA_WS_URL"),
                        help="websocket endpoint (default derived from --rpc-url)")
    parser.add_argument("--networks", default="helium,render", help="comma list of helium,render")
    parser.add_argument("--days", type=int, default=1,
                        help="simulator: days to generate; RPC: days to backfill when --since is not given")
    parser.add_argument("--since", default=None, help="RPC: backfill from this UTC day (YYYY-MM-DD)")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (same seed, same ledger)")
    parser.add_argument("--start-day", default="2026-03-28", help="simulator: first simulated UTC day")
    parser.add_argument("--realtime", action="store_true", help="simulator: produce slots at real cadence")
    parser.add_argument("--mode", choices=["addresses", "blocks"], default=os.environ.get("DEPINFLOW_LISTEN_MODE", "addresses"),
                        help="discovery: addresses (getSignaturesForAddress of the watched addresses) or blocks "
                             "(walk every block: also sees plain RENDER transfers between holders; many more RPC calls)")
    parser.add_argument("--until-caught-up", action="store_true",
                        help="exit after the backfill is indexed end to end, printing a summary")
    parser.add_argument("--durable-broker", action="store_true",
                        help="restart-durable broker storage (S3 on a local moto server)")
    parser.add_argument("--query-port", type=int, default=0, help="read-only SQL endpoint port (default: free port)")
    parser.add_argument("--database", default=os.environ.get("DEPINFLOW_CLICKHOUSE_DATABASE", "depinflow"),
                        help="ClickHouse database (default $DEPINFLOW_CLICKHOUSE_DATABASE or depinflow)")
    parser.add_argument("--check", action="store_true", help="bring the embedded infra up, report health, stop")


def _options(args: argparse.Namespace):
    from datetime import UTC, datetime, timedelta

    from pipelines.embedded import RunOptions

    since = args.since
    if args.rpc_url and not since:
        since = (datetime.now(UTC) - timedelta(days=args.days)).strftime("%Y-%m-%d")
    return RunOptions(
        data_dir=(args.data_dir or default_data_dir()), rpc_url=args.rpc_url, ws_url=args.ws_url,
        networks=tuple(n.strip() for n in args.networks.split(",") if n.strip()), days=args.days,
        seed=args.seed, start_day=args.start_day, since=since, realtime=args.realtime,
        durable_broker=args.durable_broker, database=args.database, query_port=args.query_port, mode=args.mode,
    )


def run(args: argparse.Namespace) -> int:
    if args.check:
        return _check(args)
    from pipelines.embedded import EmbeddedRun

    app = EmbeddedRun(_options(args))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        _say("starting the embedded broker, ClickHouse, sink and listener ...")
        app.start()
        _say(f"source: {app.source_text()}")
        if app.simulated:
            _say("no --rpc-url / SOLANA_RPC_URL given: indexing the built-in chain simulator (offline, no key)")
        _say(f"SQL while it runs: depinflow sql \"SELECT * FROM {args.database}.invoice_daily\" "
             f"(endpoint {app.endpoint.url}, read-only)")
        summary = app.run_until_caught_up()
        _print_summary(app, summary)
        if args.until_caught_up:
            return 0 if summary.truth_matches in (None, True) else 1
        _say("caught up; following the chain (Ctrl-C to stop)")
        app.follow(stop)
        return 0
    except KeyboardInterrupt:
        _say("stopping ...")
        return 130
    finally:
        app.stop()


def _say(text: str) -> None:
    print(f"depinflow run: {text}", file=sys.stderr, flush=True)


def _print_summary(app, summary) -> None:
    from pipelines.report.analysis import analyse
    from pipelines.report.data import load_invoice
    from pipelines.report.render import render_table

    ls = summary.listener
    _say(f"indexed {ls.transactions} transactions -> {ls.events} flow events, {ls.instructions} instructions, "
         f"{ls.dead_letters} dead letters, {ls.statuses} status records in {summary.seconds}s "
         f"({ls.tx_per_second:.0f} tx/s listener)")
    _say("rows in ClickHouse (deduplicated, retractions applied): "
         + ", ".join(f"{k}={v}" for k, v in summary.sink_rows.items()))
    if summary.truth_matches is not None:
        verdict = "EQUAL to" if summary.truth_matches else "DIFFERENT from"
        _say(f"ClickHouse totals are {verdict} the simulator's ground truth")
        for line in summary.truth_diff:
            _say(f"  {line}")
    networks = tuple(app.o.networks)
    data = load_invoice(app.client, app.o.database, networks, max(app.o.days, 1) + 1)
    sys.stdout.write(render_table(data, [analyse(n, data.for_network(n)) for n in networks]))
    sys.stdout.flush()


def _check(args: argparse.Namespace) -> int:
    import orjson

    from infra.local.broker import LocalBroker, broker_metadata_ok
    from infra.local.clickhouse import chdb_dsn, get_client, ping, redact_dsn

    data_dir = (args.data_dir or default_data_dir()).resolve()
    with LocalBroker(data_dir / "broker") as broker:
        try:
            broker_metadata_ok(broker.bootstrap)
            broker_ok = True
        except Exception:  # noqa: BLE001 - a health report, not a crash
            broker_ok = False
        dsn = chdb_dsn(data_dir / "clickhouse")
        report = {"broker": {"bootstrap": broker.bootstrap, "healthy": broker_ok},
                  "clickhouse": {"dsn": redact_dsn(dsn), "healthy": ping(get_client(dsn))}}
    print(orjson.dumps(report).decode())
    return 0 if broker_ok and report["clickhouse"]["healthy"] else 1
