"""The ClickHouse cluster variant of the DDL: Replicated* tables on every shard, Distributed tables on
top, everything `ON CLUSTER` - generated from the same migration files as the single-node schema.

Why generated and not a second DDL set: one set of migration files is the schema; a cluster only
changes where each table lives. Layout for database `db` on cluster `c`:

- `db_shard.<table>`: the data, `Replicated*MergeTree` (ZooKeeper/Keeper path from the server's
  `default_replica_path`/`default_replica_name`, i.e. per shard `{shard}` and per replica `{replica}`);
- `db.<table>`: `Distributed(c, db_shard, <table>, <sharding key>)` with the public name, so the
  sink, the views, `depinflow sql` and the report use the same names on one node or a cluster;
- views in `db`, over the Distributed tables;
- insert-triggered materialized views (the rollup's day markers) in `db_shard`, on the shard tables:
  a Distributed insert lands on a shard as a local insert, and that is what fires them;
- refreshable materialized views (the rollup refresh) in `db`, reading and writing through the
  Distributed tables. `ON CLUSTER` creates one on every node and each refreshes on its own schedule:
  the rows are the same recomputation, the newest wins (see schemas/clickhouse/README.md).

Sharding keys keep everything a query must see together on one shard:
- flow tables, instructions and commitment_status by `cityHash64(signature)`: all versions of an
  event (event_id starts with the signature) meet on one shard, so ReplacingMergeTree + FINAL
  deduplicate exactly as on one node, and the sink's reconciliation join (events x statuses on
  signature, slot) is shard-local (run it with `distributed_product_mode = 'local'`);
- dead_letters by `cityHash64(event_id)` (sink-side dead letters have no signature);
- prices and price_pegs by `cityHash64(token)`.

Selected by a setting: `SinkConfig.cluster` / `DEPINFLOW_CLICKHOUSE_CLUSTER` / `depinflow migrate
--cluster NAME` make `pipelines.clickhouse.migrate.migrate` run `migrate_cluster` instead.
The embedded engine cannot host a cluster, so tests assert the generated statements and have the
ClickHouse parser (chdb's `formatQuery`) accept every one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import structlog

from pipelines.clickhouse.migrate import (
    MIGRATIONS_TABLE,
    Layout,
    Migration,
    MigrationError,
    applied,
    check_identifier,
    ensure_database,
    load_migrations,
    render,
    split_statements,
)

log = structlog.get_logger(__name__)

SHARD_SUFFIX = "_shard"

SHARDING_KEYS: dict[str, str] = {
    "usage_fees": "cityHash64(signature)",
    "emissions": "cityHash64(signature)",
    "other_flows": "cityHash64(signature)",
    "instructions": "cityHash64(signature)",
    "commitment_status": "cityHash64(signature)",
    "dead_letters": "cityHash64(event_id)",
    "prices": "cityHash64(token)",
    "price_pegs": "cityHash64(token)",
    # every version of a day's marker / rollup row on one shard, so FINAL and argMax see them together
    "flow_days_touched": "cityHash64(network, day)",
    "flows_daily_rollup": "cityHash64(network, day)",
}

# Session settings a client should use against the cluster layout (the sink, `depinflow migrate`):
# inserts into a Distributed table return only once the shards have the rows (offsets are committed
# after inserts), and joins between co-sharded Distributed tables run shard-locally.
CLUSTER_CLIENT_SETTINGS: dict[str, str] = {
    "distributed_foreground_insert": "1",
    "distributed_product_mode": "local",
}

_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\$\{db\}\.(\w+)", re.IGNORECASE)
_CREATE_VIEW = re.compile(r"^CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s", re.IGNORECASE)
_CREATE_MV = re.compile(r"^CREATE\s+MATERIALIZED\s+VIEW\s", re.IGNORECASE)
_REFRESH = re.compile(r"^CREATE\s+MATERIALIZED\s+VIEW\s[^(]*?\sREFRESH\s", re.IGNORECASE)
_INSERT = re.compile(r"^INSERT\s+INTO\s+\$\{db\}\.(\w+)", re.IGNORECASE)
_ALTER_TABLE = re.compile(r"^ALTER\s+TABLE\s+\$\{db\}\.(\w+)", re.IGNORECASE)
# storage settings (part format, merges) exist only on the MergeTree shard tables, not on Distributed ones
_MODIFY_SETTING = re.compile(r"^ALTER\s+TABLE\s+\S+\s+(?:\$\{on_cluster\}\s+)?MODIFY\s+SETTING\s", re.IGNORECASE)


@dataclass(frozen=True)
class ClusterLayout:
    database: str
    cluster: str

    def __post_init__(self) -> None:
        check_identifier(self.database)
        check_identifier(self.cluster)

    @property
    def shard_database(self) -> str:
        return f"{self.database}{SHARD_SUFFIX}"

    @property
    def public(self) -> Layout:
        return Layout(self.database, self.cluster)

    @property
    def shard(self) -> Layout:
        return Layout(self.shard_database, self.cluster)


def sharding_key(table: str) -> str:
    try:
        return SHARDING_KEYS[table]
    except KeyError:
        raise MigrationError(
            f"no sharding key for table {table!r}: add it to pipelines.clickhouse.cluster.SHARDING_KEYS "
            "(rows that must deduplicate or join together need the same key)"
        ) from None


def distributed_table(layout: ClusterLayout, table: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {layout.database}.{table} ON CLUSTER {layout.cluster} "
            f"AS {layout.shard_database}.{table} "
            f"ENGINE = Distributed({layout.cluster}, {layout.shard_database}, {table}, {sharding_key(table)})")


def statement_for_cluster(template: str, layout: ClusterLayout) -> list[str]:
    """One templated migration statement -> the statements that do its job on the cluster."""
    text = template.strip()
    if m := _CREATE_TABLE.match(text):
        table = m.group(1)
        sharding_key(table)  # fail before emitting anything for a table without a key
        return [render(text, layout.shard), distributed_table(layout, table)]
    if _CREATE_VIEW.match(text):
        return [render(text, layout.public)]
    if _CREATE_MV.match(text):
        # refreshable: one per node over the Distributed tables; insert-triggered: on the shard tables
        return [render(text, layout.public if _REFRESH.match(text) else layout.shard)]
    if _INSERT.match(text):
        return [render(text, layout.public)]  # through the Distributed table: routed to its shard
    if _ALTER_TABLE.match(text) and _MODIFY_SETTING.match(text):
        return [render(text, layout.shard)]
    if _ALTER_TABLE.match(text):
        # the data table first, then the Distributed table's matching structure
        return [render(text, layout.shard), render(text, layout.public)]
    raise MigrationError(f"the cluster layout does not know how to run: {text[:80]!r}")


def cluster_statements(migration: Migration, layout: ClusterLayout) -> list[str]:
    out: list[str] = []
    for template in split_statements(migration.text):
        out += statement_for_cluster(template, layout)
    return out


def cluster_ddl(database: str, cluster: str, migrations: list[Migration] | None = None) -> list[str]:
    """The whole schema for a cluster, in order (databases first), for review or manual apply."""
    layout = ClusterLayout(database, cluster)
    out = [f"CREATE DATABASE IF NOT EXISTS {layout.database} ON CLUSTER {cluster}",
           f"CREATE DATABASE IF NOT EXISTS {layout.shard_database} ON CLUSTER {cluster}"]
    for mig in migrations if migrations is not None else load_migrations():
        out += cluster_statements(mig, layout)
    return out


def migrate_cluster(client, database: str, cluster: str,
                    migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply the pending migrations in the cluster layout; same record and checks as `migrate`."""
    layout = ClusterLayout(database, cluster)
    ensure_database(client, layout.public)
    client.command(f"CREATE DATABASE IF NOT EXISTS {layout.shard_database} ON CLUSTER {cluster}")
    done = applied(client, database)
    todo = []
    for mig in migrations if migrations is not None else load_migrations():
        if mig.version in done:
            if done[mig.version][1] != mig.checksum:
                raise MigrationError(f"migration {mig.path.name} changed after it was applied to {database}; "
                                     "add a new migration instead of editing an applied one")
            continue
        todo.append(mig)
    for mig in todo:
        for i, statement in enumerate(cluster_statements(mig, layout)):
            try:
                client.command(statement, settings=CLUSTER_CLIENT_SETTINGS)
            except Exception as exc:
                raise MigrationError(f"{mig.path.name} (cluster) statement {i + 1} failed: {exc}") from exc
        client.insert(MIGRATIONS_TABLE, [[mig.version], [mig.name], [mig.checksum]],
                      column_names=["version", "name", "checksum"], database=database,
                      column_oriented=True, column_type_names=["UInt32", "String", "String"])
        log.info("clickhouse_migration_applied", database=database, cluster=cluster, version=mig.version,
                 name=mig.name)
    return todo
