"""Batched, column-oriented ClickHouse writes with per-message failure isolation and reconciliation.

Failure policy (why): an insert can fail because ClickHouse is unreachable (retry the whole batch
later, commit nothing) or because one message holds a value ClickHouse refuses (dead-letter that
message, insert the rest, move on). The writer tells them apart by asking the server: if it still
answers `SELECT 1`, the batch is bisected until the offending rows are found. If too many rows
fail, or every row fails, the problem is systemic (schema drift, a full disk) and dead-lettering
would hide it, so the batch is retried instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from infra.local.clickhouse import ping
from pipelines.clickhouse.tables import COMMITMENT_STATUS, INSTRUCTIONS, VERSIONED_TABLES, TableSpec
from pipelines.sink import jsonflows, jsoninstructions
from pipelines.sink.rows import U64_MAX, Source

log = structlog.get_logger(__name__)

MAX_ISOLATED_FAILURES = 100

# ClickHouse error codes that say nothing about the rows: the server is overloaded, out of memory,
# behind on merges or its coordination. A batch failing with one of these is retried whole, never
# bisected into dead letters (issue 9: a row dead-lettered for a transient error is an event lost).
TRANSIENT_CODES = frozenset({
    159,   # TIMEOUT_EXCEEDED
    164,   # READONLY
    202,   # TOO_MANY_SIMULTANEOUS_QUERIES
    203,   # NO_FREE_CONNECTION
    209,   # SOCKET_TIMEOUT
    210,   # NETWORK_ERROR
    225,   # NO_ZOOKEEPER
    236,   # ABORTED
    241,   # MEMORY_LIMIT_EXCEEDED
    242,   # TABLE_IS_READ_ONLY
    252,   # TOO_MANY_PARTS
    319,   # UNKNOWN_STATUS_OF_INSERT
    394,   # QUERY_WAS_CANCELLED
    425,   # SYSTEM_ERROR
    439,   # CANNOT_SCHEDULE_TASK
    999,   # KEEPER_EXCEPTION
    1000,  # POCO_EXCEPTION
})
_CODE = re.compile(r"\bCode: (\d+)")


def transient(exc: BaseException) -> bool:
    """True when a ClickHouse failure is about the server's state, not about the rows inserted."""
    m = _CODE.search(str(exc))
    return m is not None and int(m.group(1)) in TRANSIENT_CODES


def _wire_type(column_type: str, values: Sequence) -> str:
    if column_type == "LowCardinality(String)":
        return "String"
    if column_type == "UInt128" and max(values) <= U64_MAX:
        return "UInt64"
    return column_type


class ClickHouseUnavailable(RuntimeError):
    """ClickHouse did not answer (or failed systemically): retry the batch, commit nothing."""


@dataclass
class Failed:
    source: Source
    reason: str
    detail: str


@dataclass
class _Attempt:
    failed: list[Failed] = field(default_factory=list)
    succeeded: int = 0


class Writer:
    """Inserts rows into one database and brings row versions in line with commitment_status."""

    def __init__(self, client, database: str) -> None:
        self.client = client
        self.database = database

    # ------------------------------------------------------------ inserts
    def insert_columns_raw(self, spec: TableSpec, columns: Sequence[Sequence]) -> None:
        """One column-oriented insert (types given, so no DESCRIBE round trip).

        Wire types are chosen for speed, and the server converts them to the column types
        (Native input allows type conversion): LowCardinality(String) travels as String (the
        client's LowCardinality encoder is a Python loop per value), UInt128 as UInt64 when every
        value fits (the UInt128 encoder is one to_bytes call per value).
        """
        if not columns or not len(columns[0]):
            return
        types = [_wire_type(t, col) for t, col in zip(spec.types, columns, strict=True)]
        self.client.insert(spec.name, columns, column_names=spec.names, database=self.database,
                           column_oriented=True, column_type_names=types)

    def insert_raw(self, spec: TableSpec, rows: Sequence[tuple]) -> None:
        if rows:
            self.insert_columns_raw(spec, list(zip(*rows, strict=True)))

    def insert(self, spec: TableSpec, rows: list[tuple], sources: list[Source]) -> list[Failed]:
        """Insert all rows; returns the messages whose rows ClickHouse refused (to dead-letter).

        Raises ClickHouseUnavailable when the server is down or the failure is not row-specific.
        """
        return self.insert_columns(spec, list(zip(*rows, strict=True)) if rows else [], sources, rows)

    def insert_columns(self, spec: TableSpec, columns: Sequence[Sequence], sources: list[Source],
                       rows: list[tuple] | None = None) -> list[Failed]:
        """Like insert(), from columns; rows are only materialized if something fails."""
        try:
            self.insert_columns_raw(spec, columns)
            return []
        except Exception as exc:  # noqa: BLE001 - classified below: outage vs poison rows
            first = exc
        rows = rows if rows is not None else list(zip(*columns, strict=True))
        if transient(first):    # not the rows' fault (and bisecting into tiny parts makes it worse)
            raise ClickHouseUnavailable(f"insert into {spec.name} failed transiently: {first}") from first
        if not self.alive():
            raise ClickHouseUnavailable(f"insert into {spec.name} failed and ClickHouse does not answer: "
                                        f"{first}") from first
        log.warning("sink_insert_failed_isolating", table=spec.name, rows=len(rows), error=str(first)[:300])
        attempt = _Attempt()
        self._bisect(spec, rows, sources, attempt, first)
        if attempt.succeeded == 0 and len(rows) > 1:
            raise ClickHouseUnavailable(f"every row of the {spec.name} batch fails: {first}") from first
        return attempt.failed

    def _bisect(self, spec: TableSpec, rows: list[tuple], sources: list[Source], attempt: _Attempt,
                error: Exception) -> None:
        if transient(error):    # the server's state changed while isolating: retry the whole batch later
            raise ClickHouseUnavailable(f"insert into {spec.name} failed transiently while isolating: "
                                        f"{error}") from error
        if len(rows) == 1:
            attempt.failed.append(Failed(sources[0], "insert_failed", f"{type(error).__name__}: {error}"))
            if len(attempt.failed) > MAX_ISOLATED_FAILURES:
                raise ClickHouseUnavailable(
                    f"more than {MAX_ISOLATED_FAILURES} rows of a {spec.name} batch fail: {error}") from error
            return
        mid = len(rows) // 2
        for part, srcs in ((rows[:mid], sources[:mid]), (rows[mid:], sources[mid:])):
            try:
                self.insert_raw(spec, part)
                attempt.succeeded += len(part)
            except Exception as exc:  # noqa: BLE001 - recurse into the failing half
                if not self.alive():
                    raise ClickHouseUnavailable(f"ClickHouse went away while isolating: {exc}") from exc
                self._bisect(spec, part, srcs, attempt, exc)

    def insert_json(self, spec: TableSpec, data: bytes, ranges: Sequence[tuple[int, int]]) -> bool:
        """Insert a jsonflows / jsoninstructions payload with ClickHouse's parser. False when ClickHouse
        refused it (some row needs the exact path; nothing wrong was written: every row it keeps passed
        every check); raises ClickHouseUnavailable when ClickHouse does not answer."""
        path = jsonflows.write_payload(data)
        if spec.name == INSTRUCTIONS.name:
            sql, settings = jsoninstructions.insert_sql(self.database, path, ranges), jsoninstructions.SETTINGS
        else:
            sql, settings = jsonflows.insert_sql(self.database, spec, path, ranges), jsonflows.SETTINGS
        try:
            self.client.command(sql + jsonflows.settings_clause(settings))    # not settings=: see settings_clause
            return True
        except Exception as exc:  # noqa: BLE001 - classified: outage vs a row for the exact path
            if not self.alive():
                raise ClickHouseUnavailable(f"JSON insert into {spec.name} failed and ClickHouse does not "
                                            f"answer: {exc}") from exc
            log.info("sink_json_insert_refused", table=spec.name, error=str(exc)[:300])
            return False
        finally:
            os.unlink(path)

    insert_flow_json = insert_json      # the name of sessions 1-2 (flows only)

    def alive(self) -> bool:
        return ping(self.client)

    # ------------------------------------------------------------ commitment reconciliation
    def statuses_in_range(self, lo: int, hi: int) -> int:
        return int(self.client.query(
            f"SELECT count() FROM {self.database}.{COMMITMENT_STATUS.name} "
            "WHERE slot BETWEEN {lo:UInt64} AND {hi:UInt64}",
            parameters={"lo": lo, "hi": hi}).result_rows[0][0])

    def reconcile(self, lo: int, hi: int, tables: Sequence[TableSpec] = VERSIONED_TABLES) -> None:
        """Write new row versions for rows in slots [lo, hi] whose transaction has a newer status.

        Runs after every insert of events (a status may have arrived first) and of statuses (the
        events may already be there). Both sides insert first and reconcile second, so even two
        sinks racing on the two topics leave the right end state. Rows are copied in version then
        insertion order, so among equal new versions the newest content wins in ReplacingMergeTree.
        """
        if self.statuses_in_range(lo, hi) == 0:
            return
        db = self.database
        for spec in tables:
            self.client.command(
                f"""INSERT INTO {db}.{spec.name}
                SELECT t.* REPLACE (
                    s.st AS commitment, s.sv AS version, toUInt8(s.st = 'retracted') AS is_deleted,
                    now64(3) AS inserted_at)
                FROM {db}.{spec.name} AS t
                INNER JOIN (
                    SELECT signature, slot, argMax(status, version) AS st, max(version) AS sv
                    FROM {db}.{COMMITMENT_STATUS.name}
                    WHERE slot BETWEEN {{lo:UInt64}} AND {{hi:UInt64}}
                    GROUP BY signature, slot
                ) AS s ON t.signature = s.signature AND t.slot = s.slot
                WHERE t.slot BETWEEN {{lo:UInt64}} AND {{hi:UInt64}} AND t.version < s.sv
                ORDER BY t.version, t.inserted_at""",
                parameters={"lo": lo, "hi": hi},
            )
