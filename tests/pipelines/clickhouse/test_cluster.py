"""The cluster variant of the DDL: what a sharded, replicated ClickHouse needs, generated from the same
migration files. The embedded engine cannot host a cluster, so the statements are asserted and the
real ClickHouse parser (chdb's formatQuery) must accept every one of them."""

from __future__ import annotations

import re

import pytest

from pipelines.clickhouse.cluster import (
    CLUSTER_CLIENT_SETTINGS,
    SHARDING_KEYS,
    ClusterLayout,
    cluster_ddl,
    migrate_cluster,
    statement_for_cluster,
)
from pipelines.clickhouse.migrate import MigrationError, load_migrations, migrate

DB, CLUSTER = "depinflow", "depin_cluster"
DATA_TABLES = ["usage_fees", "emissions", "other_flows", "instructions", "dead_letters", "commitment_status",
               "prices", "price_pegs", "flow_days_touched", "flows_daily_rollup"]
# 0006, then 0007 (the rollup's read side; flows_daily replaced)
VIEWS = ["flows", "prices_latest", "flows_daily", "usage_fees_daily", "emissions_daily", "invoice_daily",
         "flow_days_unsettled", "flows_daily_live", "flows_daily_recompute", "flows_daily_groups", "flows_daily"]


@pytest.fixture(scope="module")
def ddl() -> list[str]:
    return cluster_ddl(DB, CLUSTER)


def _one_line(sql: str) -> str:
    return " ".join(sql.split())


def _created(ddl: list[str], pattern: str) -> list[re.Match]:
    return [m for s in ddl if (m := re.match(pattern, _one_line(s)))]


def test_every_statement_parses_as_clickhouse_sql(ddl, ch_client):
    for statement in ddl:
        formatted = ch_client.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows
        assert formatted and formatted[0][0], statement


def test_databases_and_every_ddl_statement_run_on_the_cluster(ddl):
    assert ddl[:2] == [f"CREATE DATABASE IF NOT EXISTS {DB} ON CLUSTER {CLUSTER}",
                       f"CREATE DATABASE IF NOT EXISTS {DB}_shard ON CLUSTER {CLUSTER}"]
    for statement in ddl:
        if not statement.startswith("INSERT"):
            assert f" ON CLUSTER {CLUSTER}" in _one_line(statement), statement


def test_data_lives_in_replicated_shard_tables(ddl):
    local = _created(ddl, rf"CREATE TABLE IF NOT EXISTS {DB}_shard\.(\w+) ON CLUSTER {CLUSTER} (.*)")
    assert sorted(m.group(1) for m in local) == sorted(DATA_TABLES)
    for m in local:
        body = m.group(2)
        if body.startswith("AS "):  # emissions / other_flows copy usage_fees, engine included
            assert body == f"AS {DB}_shard.usage_fees"
        else:
            engine = re.search(r"ENGINE = (\w+)\(", body).group(1)
            assert engine.startswith("Replicated") and engine.endswith("MergeTree"), (m.group(1), engine)
    # nothing is created as a plain (unreplicated) MergeTree anywhere
    assert not any(re.search(r"ENGINE = (Replacing|Summing|Aggregating)?MergeTree", s) for s in ddl)


def test_every_data_table_has_a_distributed_table_with_its_sharding_key(ddl):
    dist = _created(ddl, rf"CREATE TABLE IF NOT EXISTS {DB}\.(\w+) ON CLUSTER {CLUSTER} AS {DB}_shard\.(\w+) "
                         rf"ENGINE = Distributed\({CLUSTER}, {DB}_shard, (\w+), (.+)\)$")
    assert sorted(m.group(1) for m in dist) == sorted(DATA_TABLES)
    for m in dist:
        table = m.group(1)
        assert m.group(2) == m.group(3) == table
        assert m.group(4) == SHARDING_KEYS[table]
    keys = {m.group(1): m.group(4) for m in dist}
    # all versions of an event and its transaction's statuses land on one shard: FINAL dedups, the
    # sink's reconciliation join stays shard-local
    assert {keys[t] for t in ("usage_fees", "emissions", "other_flows", "instructions", "commitment_status")} == {
        "cityHash64(signature)"}


def test_distributed_table_follows_its_shard_table(ddl):
    order = [_one_line(s) for s in ddl]
    for table in DATA_TABLES:
        local = next(i for i, s in enumerate(order) if s.startswith(f"CREATE TABLE IF NOT EXISTS {DB}_shard.{table} "))
        dist = next(i for i, s in enumerate(order) if s.startswith(f"CREATE TABLE IF NOT EXISTS {DB}.{table} "))
        assert dist == local + 1


def test_views_read_the_distributed_tables(ddl):
    views = _created(ddl, rf"CREATE OR REPLACE VIEW {DB}\.(\w+) ON CLUSTER {CLUSTER} AS (.*)")
    assert [m.group(1) for m in views] == VIEWS
    for m in views:
        assert f"{DB}_shard." not in m.group(2)
    flows = next(m.group(2) for m in views if m.group(1) == "flows")
    assert f"FROM {DB}.usage_fees FINAL" in flows and f"FROM {DB}.emissions FINAL" in flows


def test_the_inserts_go_through_the_distributed_tables(ddl):
    inserts = [s for s in ddl if s.startswith("INSERT")]
    assert [s.split(" (")[0] for s in inserts] == [f"INSERT INTO {DB}.price_pegs", f"INSERT INTO {DB}.flow_days_touched"]
    assert f"FROM {DB}.usage_fees" in inserts[1]  # the seed reads every shard


def test_day_markers_fire_on_the_shard_tables_and_the_refresh_runs_over_the_distributed_tables(ddl):
    mvs = _created(ddl, rf"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\.(\w+) ON CLUSTER {CLUSTER} (.*)")
    by_name = {m.group(2): (m.group(1), m.group(3)) for m in mvs}
    assert sorted(by_name) == ["emissions_touched_mv", "flows_daily_refresh", "other_flows_touched_mv",
                               "usage_fees_touched_mv"]
    for table in ("usage_fees", "emissions", "other_flows"):
        db, body = by_name[f"{table}_touched_mv"]
        # a Distributed insert arrives on the shard as a local insert: that is what fires the MV
        assert db == f"{DB}_shard"
        assert body.startswith(f"TO {DB}_shard.flow_days_touched AS ") and f"FROM {DB}_shard.{table} " in body
    db, body = by_name["flows_daily_refresh"]
    assert db == DB and body.startswith(f"REFRESH EVERY 30 SECOND APPEND TO {DB}.flows_daily_rollup AS ")
    assert f"FROM {DB}.flows_daily_recompute(full = 0, grace_ms = 60000)" in body


def test_a_new_table_without_a_sharding_key_fails_loudly():
    with pytest.raises(MigrationError, match="no sharding key for table 'mystery'"):
        statement_for_cluster("CREATE TABLE IF NOT EXISTS ${db}.mystery ${on_cluster} (x UInt8) "
                              "ENGINE = ${replicated}MergeTree ORDER BY x", ClusterLayout(DB, CLUSTER))
    with pytest.raises(MigrationError, match="does not know how to run"):
        statement_for_cluster("OPTIMIZE TABLE ${db}.usage_fees FINAL", ClusterLayout(DB, CLUSTER))


def test_alter_applies_to_shard_and_distributed_table():
    out = statement_for_cluster("ALTER TABLE ${db}.usage_fees ${on_cluster} ADD COLUMN IF NOT EXISTS note String",
                                ClusterLayout(DB, CLUSTER))
    assert out == [f"ALTER TABLE {DB}_shard.usage_fees ON CLUSTER {CLUSTER} ADD COLUMN IF NOT EXISTS note String",
                   f"ALTER TABLE {DB}.usage_fees ON CLUSTER {CLUSTER} ADD COLUMN IF NOT EXISTS note String"]


def test_storage_settings_apply_to_the_shard_table_only():
    """A Distributed table has no MergeTree settings: MODIFY SETTING (migration 0008) goes to the shard."""
    sql = "ALTER TABLE ${db}.instructions ${on_cluster} MODIFY SETTING min_bytes_for_wide_part = 134217728"
    assert statement_for_cluster(sql, ClusterLayout(DB, CLUSTER)) == [
        f"ALTER TABLE {DB}_shard.instructions ON CLUSTER {CLUSTER} MODIFY SETTING min_bytes_for_wide_part = 134217728"]


def test_the_part_format_settings_reach_every_big_shard_table(ddl):
    altered = [s for s in ddl if "MODIFY SETTING" in s]
    assert altered == [f"ALTER TABLE {DB}_shard.{t} ON CLUSTER {CLUSTER} MODIFY SETTING min_bytes_for_wide_part = 134217728"
                       for t in ("usage_fees", "emissions", "other_flows", "instructions")]


class RecordingClient:
    """Stands in for a cluster's server, which cannot run here: records DDL, answers 'nothing applied'."""

    def __init__(self):
        self.commands: list[tuple[str, dict | None]] = []
        self.inserts: list[tuple] = []

    def command(self, sql, settings=None):
        self.commands.append((sql, settings))

    def query(self, sql, **_):
        class Result:
            result_rows: list = []
        return Result()

    def insert(self, table, data, **kwargs):
        self.inserts.append((table, data, kwargs.get("database")))


def test_the_cluster_setting_selects_the_cluster_layout():
    client = RecordingClient()
    ran = migrate(client, DB, cluster=CLUSTER)  # what the sink and `depinflow migrate --cluster` call
    assert [m.version for m in ran] == [m.version for m in load_migrations()]
    sent = [sql for sql, _ in client.commands]
    schema = [s for s in cluster_ddl(DB, CLUSTER)]
    assert sent[-len(schema) + 2:] == schema[2:]  # every cluster statement, in order, after the setup
    assert f"CREATE DATABASE IF NOT EXISTS {DB}_shard ON CLUSTER {CLUSTER}" in sent
    assert all(s == CLUSTER_CLIENT_SETTINGS for sql, s in client.commands if sql in schema[2:])
    assert [(t, d) for t, _, d in client.inserts] == [("schema_migrations", DB)] * len(ran)


def test_migrate_cluster_refuses_an_edited_migration(tmp_path):
    client = RecordingClient()
    migrations = load_migrations()

    class Applied:
        result_rows = [(1, "flow_tables", "not-the-checksum")]

    client.query = lambda sql, **_: Applied()
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate_cluster(client, DB, CLUSTER, migrations)
