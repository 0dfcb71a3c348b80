"""Where the report reads from: a ClickHouse DSN, the running service, or the data directory.

With `--data-dir` the embedded directory may be held by a running `depinflow run`; then the report
reads through that service's read-only query endpoint (it speaks the ClickHouse HTTP protocol, so
the same clickhouse-connect client code works), otherwise it opens the directory itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra.local.clickhouse import chdb_dsn, get_client, redact_dsn
from pipelines.query.client import CLICKHOUSE_SUBDIR, live_endpoint


class SourceError(Exception):
    """No ClickHouse to read from."""


@dataclass
class Source:
    client: Any
    description: str


def open_source(dsn: str | None, data_dir: Path) -> Source:
    if dsn:
        return Source(get_client(dsn), f"ClickHouse at {redact_dsn(dsn)}")
    url = live_endpoint(data_dir)
    if url is not None:
        import clickhouse_connect

        parts = urlsplit(url)
        return Source(clickhouse_connect.get_client(host=parts.hostname, port=parts.port),
                      f"the running service's query endpoint at {url}")
    ch_dir = data_dir / CLICKHOUSE_SUBDIR
    if not ch_dir.is_dir():
        raise SourceError(f"no ClickHouse data at {ch_dir}: start the service first (`depinflow run`) "
                          "or pass --dsn")
    try:
        client = get_client(chdb_dsn(ch_dir))
    except Exception as exc:  # noqa: BLE001 - chdb reports a directory held by another process generically
        raise SourceError(f"cannot open {ch_dir} ({exc}); if a service holds it, its query endpoint did not "
                          "answer - is it still starting?") from None
    return Source(client, f"the data directory {ch_dir}")
