"""Ordered, idempotent ClickHouse migrations recorded in `<db>.schema_migrations`.

Why this shape: the sink applies migrations on start and operators run `depinflow migrate`, possibly
both at once; every statement is `IF NOT EXISTS` / `OR REPLACE`, so running a migration twice is
harmless, and the record (ReplacingMergeTree keyed by version) only prevents needless re-runs and
detects a migration file edited after it was applied (checksum mismatch -> error, fix forward).

Templates: `${db}` database, `${on_cluster}` (`ON CLUSTER name` or empty), `${replicated}` engine
prefix (`Replicated` or empty), so the cluster variant (issue 8) is a setting, not a second DDL set.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

import structlog

from schemas.clickhouse import MIGRATIONS_DIR

log = structlog.get_logger(__name__)

MIGRATIONS_TABLE = "schema_migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MigrationError(RuntimeError):
    """A migration could not be applied, or an applied one was edited afterwards."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class Layout:
    """Where and how the DDL is rendered: single node (default) or a cluster (Replicated* engines)."""

    database: str
    cluster: str | None = None

    def params(self) -> dict[str, str]:
        return {
            "db": self.database,
            "on_cluster": f"ON CLUSTER {self.cluster}" if self.cluster else "",
            "replicated": "Replicated" if self.cluster else "",
        }


def check_identifier(name: str) -> str:
    """Database names are spliced into DDL, so only plain identifiers are accepted."""
    if not _IDENT.match(name):
        raise MigrationError(f"invalid ClickHouse identifier {name!r}")
    return name


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; duplicate versions are an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"migration file name must be NNNN_name.sql: {path.name}")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(f"two migrations with version {version}: {found[version].path.name}, {path.name}")
        found[version] = Migration(version, m.group(2), path)
    return [found[v] for v in sorted(found)]


def render(sql: str, layout: Layout) -> str:
    check_identifier(layout.database)
    if layout.cluster:
        check_identifier(layout.cluster)
    return Template(sql).substitute(layout.params())


def split_statements(sql: str) -> list[str]:
    """Split on `;` at the end of a line, after dropping full-line `--` comments.

    Deliberately simple (no semicolons inside string literals in our DDL) and predictable.
    """
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    parts = re.split(r";[ \t]*(?:\n|$)", "\n".join(lines))
    return [p.strip() for p in parts if p.strip()]


def ensure_database(client, layout: Layout) -> None:
    p = layout.params()
    client.command(f"CREATE DATABASE IF NOT EXISTS {check_identifier(layout.database)} {p['on_cluster']}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {layout.database}.{MIGRATIONS_TABLE} {p['on_cluster']} "
        "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        f"ENGINE = {p['replicated']}ReplacingMergeTree(applied_at) ORDER BY version"
    )


def applied(client, database: str) -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) of the migrations recorded as applied."""
    rows = client.query(
        f"SELECT version, argMax(name, applied_at), argMax(checksum, applied_at) "
        f"FROM {check_identifier(database)}.{MIGRATIONS_TABLE} GROUP BY version"
    ).result_rows
    return {int(v): (n, c) for v, n, c in rows}


def migrate(client, database: str, cluster: str | None = None,
            migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply every migration not recorded yet, in order; returns the ones applied now.

    With `cluster`, the cluster layout (Replicated* shard tables + Distributed tables, ON CLUSTER)
    of pipelines.clickhouse.cluster is applied instead.
    """
    if cluster:
        from pipelines.clickhouse.cluster import migrate_cluster  # imports this module

        return migrate_cluster(client, database, cluster, migrations)
    layout = Layout(database, cluster)
    ensure_database(client, layout)
    done = applied(client, database)
    todo = []
    for mig in migrations if migrations is not None else load_migrations():
        if mig.version in done:
            if done[mig.version][1] != mig.checksum:
                raise MigrationError(
                    f"migration {mig.path.name} changed after it was applied to {database}; "
                    "add a new migration instead of editing an applied one"
                )
            continue
        todo.append(mig)
    for mig in todo:
        _apply(client, layout, mig)
    return todo


def _apply(client, layout: Layout, mig: Migration) -> None:
    for i, statement in enumerate(split_statements(render(mig.text, layout))):
        try:
            client.command(statement)
        except Exception as exc:
            raise MigrationError(f"{mig.path.name} statement {i + 1} failed: {exc}") from exc
    client.insert(f"{MIGRATIONS_TABLE}", [[mig.version], [mig.name], [mig.checksum]],
                  column_names=["version", "name", "checksum"], database=layout.database,
                  column_oriented=True, column_type_names=["UInt32", "String", "String"])
    log.info("clickhouse_migration_applied", database=layout.database, version=mig.version, name=mig.name)
