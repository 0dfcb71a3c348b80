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
    assert [m.version for m in ran] == [m.version for m in load_migrations()] == [1, 2, 3, 4, 5, 6, 7]
    assert migrate(ch_client, ch_database) == []
    recorded = applied(ch_client, ch_database)
    assert sorted(recorded) == [1, 2, 3, 4, 5, 6, 7]
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
