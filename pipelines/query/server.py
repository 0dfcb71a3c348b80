"""A read-only ClickHouse HTTP interface over the embedded engine of the running service.

The embedded ClickHouse (chdb) has no server port and its data directory can be opened by one
process only, so while `depinflow run` holds it, SQL from outside must go through this process.
This endpoint speaks enough of ClickHouse's HTTP protocol for clickhouse-connect, curl and
Grafana's ClickHouse data source (clickhouse-go over HTTP):

- `GET|POST /?query=...`, the query in the URL, the body, or both (URL part first, then a newline,
  then the body), `database`, `default_format` (or the `X-ClickHouse-Format` /
  `X-ClickHouse-Database` request headers), `param_<name>` query parameters, and any other
  parameter as a query setting;
- TabSeparated by default, a `FORMAT` clause wins (JSON, JSONEachRow, CSV, Native, Pretty...);
- `/ping` (and `/`, `/replicas_status` without a query) answer `Ok.\\n`;
- response headers X-ClickHouse-Format / -Timezone / -Summary / -Query-Id / -Server-Display-Name;
- errors in ClickHouse's shape: `Code: N. DB::Exception: ... (NAME) (version V)` with the
  X-ClickHouse-Exception-Code header and the HTTP status ClickHouse uses for that code;
- gzip/deflate response compression when `enable_http_compression=1` and the client accepts it.

Read-only twice over: a statement allow-list (sqlguard) and `readonly=1` on the engine handle.
Loopback only. The stdlib threading HTTP server runs in a daemon thread: no event loop is shared
with the sink, and chdb releases the GIL while a query runs.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import socket
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pipelines.query.engine import EngineError, QueryResult, ReadOnlyEngine
from pipelines.query.sqlguard import QueryRefused

ENDPOINT_FILE = "query.json"
MAX_BODY_BYTES = 16 << 20
DISPLAY_NAME = "depinflow"

# ClickHouse error code -> HTTP status (ClickHouse's exceptionCodeToHTTPStatus, the codes we meet).
_HTTP_STATUS = {
    36: 400, 62: 400, 27: 400, 53: 400, 6: 400, 38: 400, 41: 400, 44: 400, 16: 400,
    46: 404, 47: 404, 60: 404, 73: 404, 81: 404, 115: 404,
    497: 403, 516: 403, 159: 408, 48: 501, 1: 501,
}
_ERROR_NAMES = {62: "SYNTAX_ERROR", 164: "READONLY", 36: "BAD_ARGUMENTS", 73: "UNKNOWN_FORMAT",
                1: "UNSUPPORTED_METHOD", 1002: "UNKNOWN_EXCEPTION"}

_CONTENT_TYPES = {
    "tabseparated": "text/tab-separated-values; charset=UTF-8",
    "tsv": "text/tab-separated-values; charset=UTF-8",
    "csv": "text/csv; charset=UTF-8; header=absent",
    "csvwithnames": "text/csv; charset=UTF-8; header=present",
    "json": "application/json; charset=UTF-8",
    "jsoncompact": "application/json; charset=UTF-8",
    "jsoneachrow": "application/x-ndjson; charset=UTF-8",
    "native": "application/octet-stream",
    "rowbinary": "application/octet-stream",
    "parquet": "application/octet-stream",
    "arrow": "application/octet-stream",
}
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _content_type(fmt: str) -> str:
    low = fmt.lower()
    if low in _CONTENT_TYPES:
        return _CONTENT_TYPES[low]
    if low.startswith(("tabseparated", "tsv")):
        return _CONTENT_TYPES["tsv"]
    if low.startswith("csv"):
        return _CONTENT_TYPES["csvwithnames"]
    if low.startswith("json"):
        return _CONTENT_TYPES["json"]
    if low.startswith("rowbinary"):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def clickhouse_error_text(code: int, message: str, version: str) -> str:
    """`Code: N. DB::Exception: message (NAME) (version V)` - the body a ClickHouse server sends."""
    text = message.strip()
    if not text.startswith("Code:"):
        name = _ERROR_NAMES.get(code)
        text = f"Code: {code}. DB::Exception: {text}" + (f" ({name})" if name else "")
    if "(version " not in text:
        text = f"{text} (version {version})"
    return text + "\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "depinflow-query"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Small responses on kept-alive connections: without NODELAY, Nagle holds the body segment
        # for the client's delayed ACK of the headers (~40 ms per query, measured).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ---------------------------------------------------------------- routing
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._handle(body=b"")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            try:
                body = self._read_chunked()
            except ValueError as exc:
                self.close_connection = True
                self._error(413, 1, str(exc))
                return
        elif length > MAX_BODY_BYTES:
            self._error(413, 1, f"request body of {length} bytes exceeds {MAX_BODY_BYTES}")
            return
        else:
            body = self.rfile.read(length) if length else b""
        self._handle(body=body)

    def do_HEAD(self) -> None:  # noqa: N802
        self._reply(200, b"", {"Content-Type": "text/html; charset=UTF-8"})

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._reply(204, b"", {"Allow": "GET, POST, HEAD, OPTIONS"})

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return  # the service logs structured events; per-request access logs would be noise

    # ---------------------------------------------------------------- request handling
    def _handle(self, body: bytes) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if url.path in ("/ping", "/replicas_status") or (
                url.path == "/" and "query" not in params and not body):
            self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        if url.path != "/":
            self._error(404, 1, f"There is no handle {url.path}. Use / or /ping")
            return
        if params.get("compress") == "1" or params.get("decompress") == "1":
            self._error(501, 1, "ClickHouse block compression (compress=1/decompress=1) is not supported "
                                "by the depinflow query endpoint; use no compression or gzip")
            return
        try:
            sql = self._query_text(params, self._decode_body(body))
        except ValueError as exc:
            self._error(400, 36, str(exc))
            return
        self._run(sql, params)

    def _run(self, sql: str, params: dict[str, str]) -> None:
        engine = self.server.engine
        query_id = params.get("query_id") or str(uuid.uuid4())
        settings = {k: v for k, v in params.items() if not k.startswith("param_")}
        bind = {k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")}
        try:
            result = engine.execute(
                sql,
                default_format=params.get("default_format") or self.headers.get("X-ClickHouse-Format")
                or "TabSeparated",
                database=params.get("database") or self.headers.get("X-ClickHouse-Database") or None,
                settings=settings, params=bind,
            )
        except (QueryRefused, EngineError) as exc:
            self._error(_HTTP_STATUS.get(exc.code, 500), exc.code, exc.message, query_id)
            return
        self._send_result(result, query_id, params)

    def _send_result(self, result: QueryResult, query_id: str, params: dict[str, str]) -> None:
        body = result.body
        headers = {
            "Content-Type": _content_type(result.format),
            "X-ClickHouse-Format": result.format,
            "X-ClickHouse-Timezone": self.server.engine.timezone,
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Summary": json.dumps(result.summary, separators=(",", ":")),
        }
        encoding = self._response_encoding(params)
        if encoding == "gzip":
            body = gzip.compress(body, compresslevel=3)
        elif encoding == "deflate":
            body = zlib.compress(body, 3)
        if encoding:
            headers["Content-Encoding"] = encoding
        self._reply(200, body, headers)

    def _response_encoding(self, params: dict[str, str]) -> str | None:
        if params.get("enable_http_compression") != "1":
            return None
        accepted = [e.split(";")[0].strip().lower() for e in self.headers.get("Accept-Encoding", "").split(",")]
        return next((e for e in accepted if e in ("gzip", "deflate")), None)

    def _decode_body(self, body: bytes) -> bytes:
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if not body or encoding in ("", "identity"):
            return body
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
        raise ValueError(f"unsupported request Content-Encoding {encoding!r} (gzip and deflate are)")

    @staticmethod
    def _query_text(params: dict[str, str], body: bytes) -> str:
        """ClickHouse concatenates the `query` parameter and the POST body with a newline."""
        parts = [p for p in (params.get("query", ""), body.decode("utf-8", errors="replace")) if p]
        return "\n".join(parts)

    def _read_chunked(self) -> bytes:
        chunks, total = [], 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise ValueError("request body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    # ---------------------------------------------------------------- responses
    def _error(self, status: int, code: int, message: str, query_id: str | None = None) -> None:
        text = clickhouse_error_text(code, message, self.server.engine.version)
        headers = {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(code)}
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        self._reply(status, text.encode(), headers)

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("X-ClickHouse-Server-Display-Name", DISPLAY_NAME)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Keep-Alive", "timeout=30")
        if self.command != "HEAD" and body:
            # one write for headers and body (end_headers would flush the headers on their own)
            self._headers_buffer.append(b"\r\n" + body)
            self.flush_headers()
        else:
            self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], engine: ReadOnlyEngine) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.engine = engine


@dataclass
class QueryEndpoint:
    """A running endpoint: `.port`, `.url`, `.stop()`."""

    host: str
    port: int
    _server: _Server
    _thread: threading.Thread
    _engine: ReadOnlyEngine
    _endpoint_file: Path | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving, remove query.json (only if it is still ours), release the engine handle."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        if self._endpoint_file is not None:
            remove_endpoint_file(self._endpoint_file.parent, expected_port=self.port)
        self._engine.close()

    def __enter__(self) -> QueryEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_query_endpoint(client: Any, host: str = "127.0.0.1", port: int = 0, *,
                         data_dir: str | Path | None = None, max_concurrent: int = 4) -> QueryEndpoint:
    """Serve read-only SQL over the embedded engine behind `client` (a `chdb://` client).

    `port=0` picks a free port. With `data_dir`, `<data_dir>/query.json` records the URL so
    `depinflow sql` finds the running service; it is removed again by `.stop()`.
    """
    if not _is_loopback(host):
        raise ValueError(f"the query endpoint binds loopback only (127.0.0.1 / ::1), not {host!r}")
    engine = ReadOnlyEngine.for_client(client, max_concurrent=max_concurrent)
    try:
        server = _Server((host, port), engine)
    except OSError:
        engine.close()
        raise
    thread = threading.Thread(target=server.serve_forever, name="depinflow-query-endpoint", daemon=True)
    thread.start()
    endpoint = QueryEndpoint(host, server.server_address[1], server, thread, engine)
    if data_dir is not None:
        endpoint._endpoint_file = write_endpoint_file(Path(data_dir), endpoint)
    return endpoint


# -------------------------------------------------------------------- query.json
def write_endpoint_file(data_dir: Path, endpoint: QueryEndpoint) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ENDPOINT_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": endpoint.url, "host": endpoint.host, "port": endpoint.port,
                               "pid": os.getpid(), "started_at": time.time()}, indent=2))
    os.replace(tmp, path)
    return path


def read_endpoint_file(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((data_dir / ENDPOINT_FILE).read_text())
    except (OSError, ValueError):
        return None


def remove_endpoint_file(data_dir: Path, expected_port: int | None = None) -> None:
    info = read_endpoint_file(data_dir)
    if info is None or (expected_port is not None and info.get("port") != expected_port):
        return
    try:
        (data_dir / ENDPOINT_FILE).unlink()
    except FileNotFoundError:
        pass
