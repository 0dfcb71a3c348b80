"""Migrations: ordered, idempotent, recorded, templated; the DDL matches the sink's insert specs."""

from __future__ import annotations

import shutil

import pytest

from pipelines.clickhouse.migrate import (
    Layout,
    MigrationError,
    applied,
    load_migrations,
    migrate,
    render,
    split_statements,
)
from pipelines.clickhouse.tables import ALL_TABLES


def test_migrations_apply_once_and_are_recorded(ch_client, ch_database):
    ran = migrate(ch_client, ch_database)
    assert [m.version for m in ran] == [m.version for m in load_migrations()] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert migrate(ch_client, ch_database) == []
    recorded = applied(ch_client, ch_database)
    assert sorted(recorded) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert recorded[1][0] == "flow_tables"
    # the statements themselves are idempotent too (two migrators racing both run them)
    for mig in load_migrations():
        for stmt in split_statements(render(mig.text, Layout(ch_database))):
            ch_client.command(stmt)
    assert ch_client.query(f"SELECT count() FROM {ch_database}.price_pegs FINAL").result_rows == [(1,)]


def test_insert_specs_match_the_live_ddl(ch_client, ch_database):
    migrate(ch_client, ch_database)
    for spec in ALL_TABLES:
        live = dict((r[0], r[1]) for r in ch_client.query(f"DESCRIBE TABLE {ch_database}.{spec.name}").result_rows)
        for name, type_ in spec.columns:
            assert live[name] == type_, (spec.name, name)


def test_engines_partitioning_and_sorting_keys(ch_client, ch_database):
    migrate(ch_client, ch_database)
    rows = ch_client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {d:String} "
        "AND name IN ('usage_fees', 'emissions', 'other_flows', 'instructions', 'dead_letters')",
        parameters={"d": ch_database}).result_rows
    assert len(rows) == 5
    for name, engine in rows:
        assert engine.startswith("ReplacingMergeTree(version, is_deleted) PARTITION BY toYYYYMM(day) "
                                 "ORDER BY (network, day, event_id)"), name


BIG_TABLES = ("usage_fees", "emissions", "other_flows", "instructions")


def _insert_15_mib(client, database: str, table: str) -> str:
    """15 MiB of rows (above the server's default 10 MiB Wide threshold, below the sink batch's
    ~60 MiB): the part format that a sink batch gets. Returns the new part's type."""
    client.command(f"SYSTEM STOP MERGES {database}.{table}")     # the part as inserted, not a merge of it
    client.command(f"INSERT INTO {database}.{table} (event_id, signature, ix_path, network, day, block_time, slot, "
                   f"version, is_deleted) SELECT toString(number), repeat('s', 1500), '1', 'helium', "
                   f"toDate('2026-03-28'), toDateTime64('2026-03-28 00:00:00', 3, 'UTC'), number, number * 4 + 1, 0 "
                   f"FROM numbers(10000)", settings={"optimize_on_insert": 0})
    return client.query("SELECT part_type FROM system.parts WHERE database = {d:String} AND table = {t:String} "
                        "AND active ORDER BY max_block_number DESC LIMIT 1",
                        parameters={"d": database, "t": table}).result_rows[0][0]


def test_an_existing_database_migrates_to_compact_insert_parts(ch_client, ch_database):
    """0008 on a database built by 0001-0007 (with data): insert-sized parts become Compact from then on,
    the rows already there stay, and a rerun of the migration changes nothing."""
    first = [m for m in load_migrations() if m.version <= 7]
    migrate(ch_client, ch_database, migrations=first)
    assert _insert_15_mib(ch_client, ch_database, "instructions") == "Wide"     # the server default
    ran = migrate(ch_client, ch_database)
    assert [m.version for m in ran] == [8] and ran[0].name == "compact_insert_parts"
    for table in BIG_TABLES:
        engine = ch_client.query("SELECT engine_full FROM system.tables WHERE database = {d:String} AND "
                                 "name = {t:String}", parameters={"d": ch_database, "t": table}).result_rows[0][0]
        assert "min_bytes_for_wide_part = 134217728" in engine, table
        assert _insert_15_mib(ch_client, ch_database, table) == "Compact", table
    assert ch_client.query(f"SELECT count(), uniqExact(signature) FROM {ch_database}.instructions").result_rows == \
        [(20000, 1)]
    for stmt in split_statements(render(load_migrations()[-1].text, Layout(ch_database))):
        ch_client.command(stmt)      # idempotent


def test_an_edited_applied_migration_is_refused(ch_client, ch_database, tmp_path):
    for m in load_migrations():
        shutil.copy(m.path, tmp_path / m.path.name)
    migrate(ch_client, ch_database, migrations=load_migrations(tmp_path))
    edited = tmp_path / "0005_prices.sql"
    edited.write_text(edited.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(ch_client, ch_database, migrations=load_migrations(tmp_path))


def test_cluster_layout_renders_replicated_engines_on_cluster():
    sql = render(load_migrations()[0].text, Layout("prod", cluster="main"))
    assert "CREATE TABLE IF NOT EXISTS prod.usage_fees ON CLUSTER main" in sql
    assert "ENGINE = ReplicatedReplacingMergeTree(version, is_deleted)" in sql
    single = render(load_migrations()[0].text, Layout("prod"))
    assert "ON CLUSTER" not in single and "Replicated" not in single


def test_identifiers_are_checked():
    with pytest.raises(MigrationError):
        render("SELECT 1 FROM ${db}.t", Layout("x; DROP DATABASE y"))
