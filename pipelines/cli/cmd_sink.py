"""`depinflow sink`: consume the Kafka topics into ClickHouse.

Settings: defaults < `--config file.toml` < DEPINFLOW_* environment variables < flags. Logs are JSON
lines on stderr (the ClickHouse DSN is redacted); `--metrics-port` serves Prometheus /metrics.
SIGTERM/SIGINT stop after flushing and committing what is buffered.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import orjson

from pipelines.logs import configure_json_logging
from pipelines.sink import Sink, SinkConfig
from pipelines.sink.config import ENV_VARS, ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file ([kafka], [clickhouse], [sink], [metrics])")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (env DEPINFLOW_KAFKA_BOOTSTRAP)")
    parser.add_argument("--clickhouse-dsn", help="chdb:///dir or http(s)://user:pass@host:port "
                                                 "(env DEPINFLOW_CLICKHOUSE_DSN)")
    parser.add_argument("--database", help="ClickHouse database (default depinflow)")
    parser.add_argument("--topic-prefix", help="topic prefix (default depin)")
    parser.add_argument("--group", dest="group_id", help="consumer group (default depinflow-sink)")
    parser.add_argument("--kafka-client", choices=("auto", "confluent", "kafka-python"),
                        help="Kafka consumer library (default kafka-python; confluent uses half the CPU per row "
                             "but stalled after broker kills on tansu; env DEPINFLOW_SINK_KAFKA_CLIENT)")
    parser.add_argument("--assignment", choices=("group", "manual"),
                        help="group (default): sinks of one group share the partitions; manual: this sink alone "
                             "reads every partition, no group join (env DEPINFLOW_SINK_ASSIGNMENT)")
    parser.add_argument("--batch-rows", type=int, help="flush after this many rows (default 50000)")
    parser.add_argument("--batch-seconds", type=float, help="... or after this many seconds (default 1.0)")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    parser.add_argument("--metrics-host", help="bind address of the metrics server (default 127.0.0.1)")
    parser.add_argument("--no-migrate", action="store_true", help="do not apply migrations on start")
    parser.add_argument("--until-idle", action="store_true",
                        help="exit once every partition is drained (one-shot load) instead of running forever")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="quiet time that counts as idle")
    parser.add_argument("--log-level", default="INFO")
    parser.epilog = "environment: " + ", ".join(sorted(ENV_VARS))


def config_from_args(args: argparse.Namespace) -> SinkConfig:
    overrides = {k: getattr(args, k) for k in (
        "bootstrap", "clickhouse_dsn", "database", "topic_prefix", "group_id", "kafka_client", "assignment",
        "batch_rows", "batch_seconds", "metrics_port", "metrics_host")}
    if args.no_migrate:
        overrides["migrate"] = False
    return SinkConfig.load(args.config, **overrides)


def run(args: argparse.Namespace) -> int:
    configure_json_logging(args.log_level)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"depinflow sink: {exc}", file=sys.stderr)
        return 2
    sink = Sink(config)
    if args.until_idle:
        stats = sink.run_until_idle(idle_seconds=args.idle_seconds, timeout=float("inf"))
    else:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        stats = sink.run(stop)
    summary = {"messages": stats.messages, "batches": stats.batches, "rows": dict(stats.rows),
               "dead_letters": stats.dead_letters, "retries": stats.retries,
               "abandoned_batches": stats.abandoned_batches}
    print(orjson.dumps(summary).decode())
    return 0
