"""`depinflow listen`: follow Solana RPC and publish classified events to Kafka.

    depinflow listen --networks helium,render --since 2026-03-28 --rpc-url URL [--ws-url URL]
                     [--bootstrap HOST:PORT] [--config listener.toml] [--until-caught-up]

Settings: defaults < `--config file.toml` < environment (SOLANA_RPC_URL, SOLANA_WS_URL,
DEPINFLOW_KAFKA_BOOTSTRAP, ...) < flags. Logs are JSON lines on stderr with the RPC key redacted; a
progress bar with ETA is drawn during the backfill when stderr is a terminal. SIGTERM / SIGINT stop
the listener: it saves its checkpoint (which covers only what Kafka acknowledged), waits at most
--shutdown-grace seconds (default 5) for Kafka to acknowledge what is still in flight, and exits
0 when everything was acknowledged, or 3 after logging `listener_stop_unacknowledged` when it gave
up on some messages (the next start sends them again: counted duplicates, never gaps). 1 = failed
(fail closed), 2 = bad configuration. The summary is printed as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import orjson
import structlog

from pipelines.listen.config import ENV_VARS, ConfigError, ListenerConfig
from pipelines.listen.service import Listener
from pipelines.logs import configure_json_logging

# stopped, but gave up on messages Kafka had not acknowledged (not checkpointed: re-sent next start)
EXIT_UNACKNOWLEDGED = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file ([rpc], [listen], [kafka], [metrics])")
    parser.add_argument("--networks", help="comma-separated: helium,render (default both)")
    bound = parser.add_mutually_exclusive_group()
    bound.add_argument("--since", help="backfill from this UTC date (YYYY-MM-DD)")
    bound.add_argument("--from-slot", type=int, help="backfill from this slot")
    parser.add_argument("--mode", choices=["addresses", "blocks"],
                        help="addresses: getSignaturesForAddress per watched address (default); blocks: walk "
                             "every block (sees plain RENDER transfers too; downloads every block)")
    parser.add_argument("--rpc-url", help="Solana JSON-RPC HTTP endpoint (env SOLANA_RPC_URL)")
    parser.add_argument("--ws-url", help="websocket endpoint (env SOLANA_WS_URL; default derived from --rpc-url)")
    parser.add_argument("--no-websocket", action="store_true", help="reconciliation sweeps only, no websocket")
    parser.add_argument("--ws-stall-timeout", type=float,
                        help="seconds without a websocket frame before reconnecting (default 10)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (env DEPINFLOW_KAFKA_BOOTSTRAP)")
    parser.add_argument("--topic-prefix", help="topic prefix (default depin)")
    parser.add_argument("--partitions", type=int, help="partitions of topics created here (default 3)")
    parser.add_argument("--kafka-client", choices=["auto", "confluent", "kafka-python"],
                        help="producer library (default auto: confluent-kafka when installed)")
    parser.add_argument("--checkpoint", help="checkpoint file (env DEPINFLOW_CHECKPOINT)")
    parser.add_argument("--rpc-concurrency", type=int, help="HTTP requests in flight (default 32)")
    parser.add_argument("--rpc-batch", type=int, help="calls per JSON-RPC batch (default 100)")
    parser.add_argument("--no-batch", action="store_true", help="the endpoint refuses JSON-RPC batches")
    parser.add_argument("--rate-limit", dest="rate_limits",
                        help="requests/s, e.g. '*=100,getTransaction=40' (default unlimited)")
    parser.add_argument("--fetch-concurrency", type=int, help="getTransaction batches in flight (default 8)")
    parser.add_argument("--workers", type=int,
                        help="backfill in N worker processes (fetch+decode+publish; default 0 = in-process)")
    parser.add_argument("--sweep-interval", type=float, help="seconds between reconciliation sweeps (default 1)")
    parser.add_argument("--prices", help="price file (token,day,usd CSV or JSON) for USD values")
    parser.add_argument("--no-instructions", action="store_true", help="do not publish instruction records")
    parser.add_argument("--until-caught-up", action="store_true",
                        help="exit once the backfill and the tip (finalized) are published")
    parser.add_argument("--progress", choices=["auto", "on", "off"], help="backfill progress bar (default auto)")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    parser.add_argument("--metrics-host", help="bind address of the metrics server (default 127.0.0.1)")
    parser.add_argument("--shutdown-grace", type=float,
                        help="seconds a stop waits for Kafka acknowledgements before giving up (default 5)")
    parser.add_argument("--log-level", default="INFO")
    parser.epilog = "environment: " + ", ".join(sorted(ENV_VARS))


def config_from_args(args: argparse.Namespace) -> ListenerConfig:
    overrides = {k: getattr(args, k) for k in (
        "networks", "since", "from_slot", "rpc_url", "ws_url", "bootstrap", "topic_prefix", "partitions",
        "checkpoint", "rpc_concurrency", "rpc_batch", "rate_limits", "fetch_concurrency", "sweep_interval",
        "prices", "progress", "metrics_port", "metrics_host", "log_level", "kafka_client", "mode", "workers",
        "shutdown_grace", "ws_stall_timeout")}
    if args.no_websocket:
        overrides["websocket"] = False
    if args.no_batch:
        overrides["rpc_use_batches"] = False
    if args.no_instructions:
        overrides["publish_instructions"] = False
    return ListenerConfig.load(args.config, **overrides)


def run(args: argparse.Namespace) -> int:
    configure_json_logging(args.log_level)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"depinflow listen: {exc}", file=sys.stderr)
        return 2
    listener = Listener(config)
    listener.prefork_workers()    # --workers N: forks of this process while it has no thread yet

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            summary = await listener.arun(stop, until_caught_up=args.until_caught_up)
        except Exception as exc:  # fail closed: the checkpoint never passed unfinished work
            structlog.get_logger("pipelines.listen").error("listener_failed", error=f"{type(exc).__name__}: {exc}")
            return 1
        print(orjson.dumps({**summary.__dict__, "tx_per_second": round(summary.tx_per_second, 1)}).decode(),
              flush=True)
        return EXIT_UNACKNOWLEDGED if summary.unacknowledged else 0

    return asyncio.run(main())
