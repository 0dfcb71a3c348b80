"""One factory for ClickHouse clients: the embedded engine (chdb) or a real server over HTTP(S).

`chdb:///path/to/dir` opens the in-process ClickHouse engine on a data directory (one process per
directory: a second process gets "Cannot lock file .../status"). `http(s)://user:pass@host:port/db`
talks to a ClickHouse server. Both return the same clickhouse-connect client API, so nothing above
this module knows which one it runs on.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect

# chdb defaults to async_insert=1, unlike a server: an insert could return before the rows are
# durable, and the sink commits Kafka offsets right after inserts. Force synchronous inserts.
_CHDB_SETTINGS = {"async_insert": 0, "wait_for_async_insert": 1}

_lock = threading.Lock()
_embedded: dict[str, Any] = {}


class ClickHouseDsnError(ValueError):
    """The DSN is neither chdb:// nor http(s)://."""


def chdb_dsn(data_dir: str | Path) -> str:
    return f"chdb://{Path(data_dir).resolve()}"


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced, for logs and status output."""
    parts = urlsplit(dsn)
    if not parts.password and "password=" not in parts.query:
        return dsn
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    query = re.sub(r"(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit(parts._replace(query=query))


def is_embedded(dsn: str) -> bool:
    return dsn.startswith("chdb://")


def embedded_path(dsn: str) -> Path:
    return Path(dsn[len("chdb://"):])


def get_client(dsn: str, database: str | None = None, **kwargs: Any):
    """A clickhouse-connect client for `dsn`.

    The embedded engine is shared per data directory within this process (chdb allows one open
    directory per process); `database` only selects the default database for server clients,
    so callers should qualify table names or use `use_database`.
    """
    if is_embedded(dsn):
        path = embedded_path(dsn)
        path.mkdir(parents=True, exist_ok=True)
        key = str(path.resolve())
        with _lock:
            client = _embedded.get(key)
            if client is None and _embedded:
                # chdb hosts ONE engine per process, bound to the first directory opened.
                raise ClickHouseDsnError(
                    f"this process already opened the embedded ClickHouse at {next(iter(_embedded))}; "
                    f"chdb cannot open a second directory ({key}) in the same process"
                )
            if client is None:
                client = clickhouse_connect.get_client(dsn=f"chdb://{key}", settings=dict(_CHDB_SETTINGS))
                _embedded[key] = client
        return client
    if dsn.startswith(("http://", "https://", "clickhouse://", "clickhouses://")):
        if database:
            kwargs.setdefault("database", database)
        return clickhouse_connect.get_client(dsn=dsn, **kwargs)
    raise ClickHouseDsnError(f"unsupported ClickHouse DSN {redact_dsn(dsn)!r}: use chdb:///path or http(s)://...")


def ping(client) -> bool:
    try:
        return client.query("SELECT 1").result_rows == [(1,)]
    except Exception:  # noqa: BLE001 - a health probe reports, it does not raise
        return False
