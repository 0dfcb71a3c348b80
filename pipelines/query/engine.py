"""Read-only query execution on the embedded ClickHouse engine (chdb) of this process.

Why a fresh engine connection per query: chdb keeps `SET` state per connection handle, and
`readonly=1` cannot be lowered once set (measured on chdb 4.4), so each query gets its own handle
on the already-open engine (~5 ms): the request's settings are applied first, then `readonly=1`
locks the handle, then the statement runs. The sink's own client is never touched, so a query
can neither change the sink's session nor wait on its lock. chdb releases the GIL while a query
runs, so the sink keeps working meanwhile; a semaphore bounds how many queries run at once.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.query.sqlguard import QueryRefused, Statement, check

# Request parameters of the ClickHouse HTTP interface that are not query settings.
PROTOCOL_PARAMS = frozenset({
    "query", "database", "default_format", "user", "password", "query_id", "session_id",
    "session_timeout", "session_check", "compress", "decompress", "buffer_size", "wait_end_of_query",
    "client_protocol_version", "quota_key", "role", "readonly", "enable_http_compression",
    "http_zlib_compression_level", "send_progress_in_http_headers", "http_headers_progress_interval_ms",
    "cancel_http_readonly_queries_on_client_close", "add_http_cors_header", "http_native_compression_disable_checksumming_on_decompress",
})

# chdb's Python wrapper post-processes these names instead of passing them to the engine.
_WRAPPER_FORMATS = frozenset({"dataframe", "arrowtable", "datastore", "pyarrow", "arrow_table"})
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code:\s*(\d+)\.")

# A result is built in memory before it is sent; bound it so one careless SELECT * cannot
# starve the sink sharing this process. A request may lower or raise it per query.
DEFAULT_LIMITS: dict[str, str] = {"max_result_bytes": str(1 << 30), "result_overflow_mode": "throw"}

UNKNOWN_EXCEPTION = 1002
UNKNOWN_FORMAT = 73
BAD_ARGUMENTS = 36


class EngineError(Exception):
    """A query failed; `code` is the ClickHouse error code, `message` its text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class QueryResult:
    body: bytes
    format: str
    summary: dict[str, str] = field(default_factory=dict)


def _quote(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _error_from(exc: Exception) -> EngineError:
    text = str(exc).strip()
    idx = text.find("Code: ")
    if idx > 0:
        text = text[idx:]
    m = _CODE.search(text)
    return EngineError(int(m.group(1)) if m else UNKNOWN_EXCEPTION, text)


def chdb_path_of(client: Any) -> str:
    """The engine path of a clickhouse-connect chdb client (`get_client("chdb:///dir")`)."""
    path = getattr(client, "path", None)
    if not isinstance(path, str) or not type(client).__name__.startswith("Chdb"):
        raise TypeError(
            "the query endpoint serves the embedded engine (a chdb client); a ClickHouse server "
            "already has its own HTTP interface - point clients at it directly"
        )
    return path if path.startswith(":memory:") else os.path.realpath(path)


class ReadOnlyEngine:
    """Runs checked, read-only statements on the embedded engine at `path`."""

    def __init__(self, path: str, *, max_concurrent: int = 4,
                 limits: Mapping[str, str] | None = None) -> None:
        import chdb  # the embedded extra; imported here so the module loads without it

        self._chdb = chdb
        self.path = path
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._slots = threading.BoundedSemaphore(max_concurrent)
        # One long-lived handle keeps the engine open for as long as the endpoint lives.
        self._anchor = chdb.connect(path)
        row = self._anchor.query("SELECT version(), timezone()", "TabSeparated").bytes()
        self.version, self.timezone = row.decode().rstrip("\n").split("\t")

    @classmethod
    def for_client(cls, client: Any, **kwargs: Any) -> ReadOnlyEngine:
        return cls(chdb_path_of(client), **kwargs)

    def close(self) -> None:
        self._anchor.close()

    def execute(self, sql: str, *, default_format: str = "TabSeparated", database: str | None = None,
                settings: Mapping[str, str] | None = None,
                params: Mapping[str, str] | None = None) -> QueryResult:
        """Check `sql`, then run it on a fresh read-only handle. Raises QueryRefused or EngineError."""
        statement = check(sql)
        fmt = self._output_format(statement, default_format)
        with self._slots:
            conn = self._chdb.connect(self.path)
            try:
                self._prepare(conn, database, settings)
                started = time.perf_counter()
                try:
                    result = conn.query(sql, fmt, params=dict(params or {}))
                except Exception as exc:  # noqa: BLE001 - chdb raises its own error types
                    raise _error_from(exc) from None
                return QueryResult(result.bytes() or b"", fmt, self._summary(result, started))
            finally:
                conn.close()

    @staticmethod
    def _output_format(statement: Statement, default_format: str) -> str:
        fmt = statement.format or default_format or "TabSeparated"
        if not _IDENT.match(fmt) or fmt.lower() in _WRAPPER_FORMATS:
            raise EngineError(UNKNOWN_FORMAT, f"Unknown output format {fmt}")
        return fmt

    def _prepare(self, conn: Any, database: str | None, settings: Mapping[str, str] | None) -> None:
        """USE the database, apply limits and request settings, then lock the handle read-only."""
        statements = []
        if database:
            if not _IDENT.match(database):
                raise EngineError(BAD_ARGUMENTS, f"Invalid database name {database!r}")
            statements.append(f"USE {database}")
        merged = {**self.limits, **{k: v for k, v in (settings or {}).items() if k not in PROTOCOL_PARAMS}}
        assignments = []
        for name, value in merged.items():
            if not _IDENT.match(name):
                raise EngineError(BAD_ARGUMENTS, f"Invalid setting name {name!r}")
            assignments.append(f"{name} = {_quote(value)}")
        # one statement, applied left to right: readonly comes last, so nothing after it can change
        statements.append("SET " + ", ".join([*assignments, "readonly = 1"]))
        for stmt in statements:
            try:
                conn.query(stmt, "TabSeparated")
            except Exception as exc:  # noqa: BLE001
                raise _error_from(exc) from None

    @staticmethod
    def _summary(result: Any, started: float) -> dict[str, str]:
        summary = {"read_rows": "0", "read_bytes": "0", "written_rows": "0", "written_bytes": "0",
                   "total_rows_to_read": "0", "result_rows": "0", "result_bytes": "0",
                   "elapsed_ns": str(int((time.perf_counter() - started) * 1e9))}
        try:
            summary["read_rows"] = str(int(result.rows_read()))
            summary["read_bytes"] = str(int(result.bytes_read()))
            summary["elapsed_ns"] = str(int(result.elapsed() * 1e9))
        except Exception:  # noqa: BLE001 - statistics are a courtesy
            pass
        return summary


__all__ = ["EngineError", "QueryRefused", "QueryResult", "ReadOnlyEngine", "chdb_path_of"]
