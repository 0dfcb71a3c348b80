"""`depinflow migrate`: apply the ClickHouse migrations (schemas/clickhouse) to a database.

Idempotent: applied migrations are recorded in `<database>.schema_migrations` and skipped; an applied
migration whose file changed is an error (add a new migration instead).
"""

from __future__ import annotations

import argparse
import sys

from infra.local.clickhouse import get_client, redact_dsn
from pipelines.clickhouse.migrate import MigrationError, applied, load_migrations, migrate
from pipelines.logs import configure_json_logging
from pipelines.sink.config import ConfigError, SinkConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="the sink's TOML config file (reads [clickhouse])")
    parser.add_argument("--clickhouse-dsn", help="chdb:///dir or http(s)://... (env DEPINFLOW_CLICKHOUSE_DSN)")
    parser.add_argument("--database", help="database to migrate (default depinflow)")
    parser.add_argument("--cluster", help="ON CLUSTER name: Replicated* engines (production cluster)")
    parser.add_argument("--status", action="store_true", help="list migrations and whether they are applied")


def run(args: argparse.Namespace) -> int:
    configure_json_logging("WARNING")
    try:
        cfg = SinkConfig.load(args.config, clickhouse_dsn=args.clickhouse_dsn, database=args.database,
                              cluster=args.cluster)
    except ConfigError as exc:
        print(f"depinflow migrate: {exc}", file=sys.stderr)
        return 2
    client = get_client(cfg.clickhouse_dsn)
    where = f"{redact_dsn(cfg.clickhouse_dsn)} database {cfg.database}"
    try:
        if args.status:
            done = applied(client, cfg.database) if _has_table(client, cfg.database) else {}
            for m in load_migrations():
                print(f"{m.version:04d} {m.name:<24} {'applied' if m.version in done else 'pending'}")
            return 0
        ran = migrate(client, cfg.database, cfg.cluster)
    except MigrationError as exc:
        print(f"depinflow migrate: {exc}", file=sys.stderr)
        return 1
    for m in ran:
        print(f"applied {m.version:04d}_{m.name}")
    print(f"{where}: {'up to date' if not ran else f'{len(ran)} migration(s) applied'}")
    return 0


def _has_table(client, database: str) -> bool:
    rows = client.query("SELECT count() FROM system.tables WHERE database = {d:String} AND name = 'schema_migrations'",
                        parameters={"d": database}).result_rows
    return rows[0][0] > 0
