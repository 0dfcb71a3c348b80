"""Run one read-only statement: through the running service's endpoint, else on the data directory.

Why both: the embedded ClickHouse directory can be opened by one process only. While
`depinflow run` holds it, the only way in is its query endpoint (found via `<data-dir>/query.json`);
when no service runs, the directory is free and is opened directly, with the same allow-list and
`readonly=1` as the endpoint, so `depinflow sql` behaves the same either way.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipelines.query.engine import EngineError, ReadOnlyEngine
from pipelines.query.server import read_endpoint_file
from pipelines.query.sqlguard import QueryRefused

CLICKHOUSE_SUBDIR = "clickhouse"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# --format -> ClickHouse output format (a FORMAT clause in the statement still wins)
OUTPUT_FORMATS = {
    "table": "PrettyCompactMonoBlock",
    "csv": "CSVWithNames",
    "tsv": "TSVWithNames",
    "json": "JSONEachRow",
}
# Plain text tables: no ANSI colours, no row numbers (ClickHouse 24+ adds them by default).
OUTPUT_SETTINGS = {"output_format_pretty_color": "0", "output_format_pretty_row_numbers": "0"}


class SqlError(Exception):
    """The statement failed or could not be run; `text` is what to show the user."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass
class SqlAnswer:
    body: bytes
    via: str  # which way it was answered, for the user


def live_endpoint(data_dir: Path, timeout: float = 2.0) -> str | None:
    """The URL in `<data_dir>/query.json` if something answers /ping there, else None."""
    info = read_endpoint_file(data_dir)
    if not info or not info.get("url"):
        return None
    try:
        with urllib.request.urlopen(f"{info['url']}/ping", timeout=timeout) as resp:
            return info["url"] if resp.read() == b"Ok.\n" else None
    except (OSError, urllib.error.URLError):
        return None


def query_endpoint(url: str, sql: str, fmt: str, database: str | None, timeout: float = 300.0) -> bytes:
    params = {"default_format": fmt, **OUTPUT_SETTINGS}
    if database:
        params["database"] = database
    req = urllib.request.Request(f"{url}/?{urllib.parse.urlencode(params)}", data=sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as err:
        raise SqlError(err.read().decode(errors="replace").strip()) from None
    except (OSError, urllib.error.URLError) as exc:
        raise SqlError(f"the query endpoint at {url} stopped answering: {exc}") from None


def query_directory(ch_dir: Path, sql: str, fmt: str, database: str | None) -> bytes:
    if not ch_dir.is_dir():
        raise SqlError(f"no ClickHouse data at {ch_dir}: start the service first (`depinflow run`)")
    try:
        engine = ReadOnlyEngine(str(ch_dir.resolve()))
    except Exception as exc:  # noqa: BLE001 - chdb reports a locked directory as a generic error
        raise SqlError(
            f"cannot open {ch_dir} ({exc}); if a service holds it, its query endpoint did not answer "
            "- is it still starting?"
        ) from None
    try:
        if database and not _database_exists(engine, database):
            database = None
        return engine.execute(sql, default_format=fmt, database=database, settings=OUTPUT_SETTINGS).body
    except (QueryRefused, EngineError) as exc:
        raise SqlError(_error_text(exc, engine.version)) from None
    finally:
        engine.close()


def run_sql(sql: str, data_dir: Path, output: str = "table", database: str | None = "depinflow") -> SqlAnswer:
    """Answer `sql` from the running service if there is one, else from the data directory."""
    fmt = OUTPUT_FORMATS[output]
    if database and not _IDENT.match(database):
        raise SqlError(f"invalid database name {database!r}")
    url = live_endpoint(data_dir)
    if url is not None:
        if database and not _endpoint_database_exists(url, database):
            database = None
        return SqlAnswer(query_endpoint(url, sql, fmt, database), f"the running service's query endpoint at {url}")
    ch_dir = data_dir / CLICKHOUSE_SUBDIR
    return SqlAnswer(query_directory(ch_dir, sql, fmt, database), f"the data directory {ch_dir} directly (no running service answered)")


def _database_exists(engine: ReadOnlyEngine, database: str) -> bool:
    return engine.execute(f"EXISTS DATABASE `{database}`").body.strip() == b"1"


def _endpoint_database_exists(url: str, database: str) -> bool:
    return query_endpoint(url, f"EXISTS DATABASE `{database}`", "TabSeparated", None).strip() == b"1"


def _error_text(exc: QueryRefused | EngineError, version: str) -> str:
    from pipelines.query.server import clickhouse_error_text

    return clickhouse_error_text(exc.code, exc.message, version).strip()
