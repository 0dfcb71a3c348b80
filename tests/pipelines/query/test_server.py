"""The read-only ClickHouse HTTP endpoint over the embedded engine: clickhouse-connect, raw HTTP
(curl-like, via urllib), and read-only enforcement."""

from __future__ import annotations

import gzip
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime
from decimal import Decimal

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from pipelines.query import read_endpoint_file, start_query_endpoint

ROWS = [
    (1, "helium", datetime(2026, 1, 1, 0, 0, 0, 123000), Decimal("1.5"), {"HNT": Decimal("2.25")}),
    (2, "render", datetime(2026, 1, 2, 12, 30), None, {}),
    (3, "helium", datetime(2026, 1, 3), Decimal("0.000010000000"), {"DC": Decimal("100000")}),
]


@pytest.fixture(scope="module")
def db(ch_client):
    name = f"q_{uuid.uuid4().hex[:10]}"
    ch_client.command(f"CREATE DATABASE {name}")
    ch_client.command(
        f"CREATE TABLE {name}.t (x UInt32, network LowCardinality(String), ts DateTime64(3, 'UTC'), "
        "usd Nullable(Decimal(38, 12)), tokens Map(String, Decimal(38, 12))) ENGINE = MergeTree ORDER BY x"
    )
    ch_client.insert(f"{name}.t", [list(r) for r in ROWS],
                     column_names=["x", "network", "ts", "usd", "tokens"])
    yield name
    ch_client.command(f"DROP DATABASE IF EXISTS {name} SYNC")


@pytest.fixture(scope="module")
def endpoint(ch_client, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("svc")
    ep = start_query_endpoint(ch_client, "127.0.0.1", 0, data_dir=data_dir)
    ep.data_dir = data_dir
    yield ep
    ep.stop()


@pytest.fixture(scope="module")
def http_client(endpoint):
    return clickhouse_connect.get_client(host="127.0.0.1", port=endpoint.port)


def get(endpoint, query=None, path="/", headers=None, body=None, **params):
    if query is not None:
        params["query"] = query
    url = f"{endpoint.url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


# ------------------------------------------------------------------ clickhouse-connect
def test_clickhouse_connect_reads_typed_rows_like_the_embedded_client(http_client, ch_client, db):
    sql = f"SELECT x, network, ts, usd, tokens FROM {db}.t ORDER BY x"
    assert http_client.server_version == ch_client.server_version
    result = http_client.query(sql)
    assert result.column_names == ("x", "network", "ts", "usd", "tokens")
    assert result.result_rows == ch_client.query(sql).result_rows
    assert [r[0] for r in result.result_rows] == [1, 2, 3]
    assert result.result_rows[0][2] == datetime(2026, 1, 1, 0, 0, 0, 123000)
    assert result.result_rows[0][3] == Decimal("1.5")
    assert result.result_rows[1][3] is None
    assert result.result_rows[2][4] == {"DC": Decimal("100000")}


def test_clickhouse_connect_server_side_parameters_and_database(endpoint, db):
    client = clickhouse_connect.get_client(host="127.0.0.1", port=endpoint.port, database=db)
    rows = client.query("SELECT count(), sum(x) FROM t WHERE network = {n:String}",
                        parameters={"n": "helium"}).result_rows
    assert rows == [(2, 4)]
    assert client.command("SELECT currentDatabase()") == db


def test_clickhouse_connect_write_is_refused_with_readonly_code(http_client, ch_client, db):
    with pytest.raises(DatabaseError) as info:
        http_client.command(f"INSERT INTO {db}.t (x) VALUES (99)")
    assert "Code: 164" in str(info.value) and "readonly" in str(info.value)
    assert ch_client.query(f"SELECT count() FROM {db}.t").result_rows == [(3,)]


# ------------------------------------------------------------------ raw HTTP
def test_ping_and_root(endpoint):
    assert get(endpoint, path="/ping")[2] == b"Ok.\n"
    assert get(endpoint)[2] == b"Ok.\n"


def test_default_format_is_tab_separated(endpoint, db):
    status, headers, body = get(endpoint, f"SELECT x, network FROM {db}.t ORDER BY x")
    assert status == 200
    assert body == b"1\thelium\n2\trender\n3\thelium\n"
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert headers["X-ClickHouse-Timezone"]
    summary = json.loads(headers["X-ClickHouse-Summary"])
    assert int(summary["read_rows"]) == 3


@pytest.mark.parametrize("fmt, expected", [
    ("JSONEachRow", b'{"x":1,"network":"helium"}\n{"x":2,"network":"render"}\n{"x":3,"network":"helium"}\n'),
    ("CSV", b'1,"helium"\n2,"render"\n3,"helium"\n'),
    ("CSVWithNames", b'"x","network"\n1,"helium"\n2,"render"\n3,"helium"\n'),
])
def test_format_clause_is_honoured(endpoint, db, fmt, expected):
    status, headers, body = get(endpoint, f"SELECT x, network FROM {db}.t ORDER BY x FORMAT {fmt}")
    assert (status, body) == (200, expected)
    assert headers["X-ClickHouse-Format"] == fmt


def test_json_format_for_grafana_style_clients(endpoint, db):
    status, headers, body = get(endpoint, f"SELECT network, count() AS n FROM {db}.t GROUP BY network "
                                          "ORDER BY network FORMAT JSON")
    doc = json.loads(body)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert doc["meta"] == [{"name": "network", "type": "LowCardinality(String)"}, {"name": "n", "type": "UInt64"}]
    assert doc["data"] == [{"network": "helium", "n": 2}, {"network": "render", "n": 1}]
    assert doc["rows"] == 2


def test_default_format_param_post_body_and_query_concatenation(endpoint, db):
    # query param + body are joined with a newline, like ClickHouse does
    status, _, body = get(endpoint, f"SELECT x FROM {db}.t", body=b"WHERE x > 1 ORDER BY x",
                          default_format="JSONCompactEachRow")
    assert (status, body) == (200, b"[2]\n[3]\n")
    status, _, body = get(endpoint, body=f"SELECT sum(x) FROM {db}.t".encode(),
                          headers={"X-ClickHouse-Format": "CSV"})
    assert (status, body) == (200, b"6\n")


def test_native_default_format_like_grafana_clickhouse_go(endpoint, db):
    # clickhouse-go over HTTP (Grafana's data source): POST body, default_format=Native, settings as
    # URL parameters; it decodes Native blocks at revision 0: columns, rows, then name/type/data
    status, headers, body = get(endpoint, body=f"SELECT toUInt8(count()) AS n FROM {db}.t".encode(),
                                default_format="Native", max_execution_time="60")
    assert status == 200 and headers["X-ClickHouse-Format"] == "Native"
    assert body == b"\x01\x01" + b"\x01n" + b"\x05UInt8" + b"\x03"


def test_database_param_and_query_parameters(endpoint, db):
    status, _, body = get(endpoint, "SELECT count() FROM t WHERE x >= {lo:UInt32}", database=db, param_lo="2")
    assert (status, body) == (200, b"2\n")


def test_gzip_response_when_asked(endpoint, db):
    status, headers, body = get(endpoint, f"SELECT x FROM {db}.t ORDER BY x", enable_http_compression="1",
                                headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == b"1\n2\n3\n"


def test_engine_errors_keep_clickhouse_shape(endpoint):
    status, headers, body = get(endpoint, "SELECT * FROM no_such_db.no_such_table")
    assert status == 404
    assert headers["X-ClickHouse-Exception-Code"] == "81"
    assert body.startswith(b"Code: 81. DB::Exception:") and b"(version " in body


# ------------------------------------------------------------------ read-only enforcement
@pytest.mark.parametrize("sql", [
    "INSERT INTO {db}.t (x) VALUES (100)",
    "CREATE TABLE {db}.u (x UInt8) ENGINE = Memory",
    "DROP TABLE {db}.t",
    "ALTER TABLE {db}.t DELETE WHERE 1",
    "TRUNCATE TABLE {db}.t",
    "SET readonly = 0",
    "OPTIMIZE TABLE {db}.t FINAL",
])
def test_writes_are_refused_in_clickhouse_error_shape(endpoint, ch_client, db, sql):
    for method_body in (None, sql.format(db=db).encode()):
        status, headers, body = (get(endpoint, sql.format(db=db)) if method_body is None
                                 else get(endpoint, body=method_body))
        assert status == 500
        assert headers["X-ClickHouse-Exception-Code"] == "164"
        assert body.startswith(b"Code: 164. DB::Exception: Cannot execute query in readonly mode")
        assert body.endswith(b"(READONLY) (version " + ch_client.server_version.encode() + b")\n")
    assert ch_client.query(f"SELECT count() FROM {db}.t").result_rows == [(3,)]
    assert ch_client.query(f"EXISTS TABLE {db}.u").result_rows == [(0,)]


def test_multi_statement_is_refused_and_nothing_runs(endpoint, ch_client, db):
    status, headers, body = get(endpoint, f"SELECT 1; DROP TABLE {db}.t")
    assert status == 400 and headers["X-ClickHouse-Exception-Code"] == "62"
    assert b"Multi-statements are not allowed" in body
    assert ch_client.query(f"EXISTS TABLE {db}.t").result_rows == [(1,)]


def test_into_outfile_and_file_function_are_refused(endpoint, tmp_path):
    target = tmp_path / "out.txt"
    status, headers, _ = get(endpoint, f"SELECT 1 INTO OUTFILE '{target}'")
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "164"
    assert not target.exists()
    status, headers, _ = get(endpoint, "SELECT file('/etc/hostname')")
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "164"


def test_engine_itself_runs_read_only(endpoint, ch_client):
    # the second lock: the handle that runs the query is readonly=1 and cannot be talked out of it
    assert get(endpoint, "SELECT getSetting('readonly')")[2] == b"1\n"
    status, headers, body = get(endpoint, "SELECT 1 SETTINGS readonly = 0")
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "164"
    assert b"Cannot modify 'readonly' setting in readonly mode" in body
    # a readonly URL parameter cannot lower it either
    assert get(endpoint, "SELECT getSetting('readonly')", readonly="0")[2] == b"1\n"
    # ... and the service's own client (the sink's) is untouched
    assert ch_client.query("SELECT getSetting('readonly')").result_rows == [(0,)]


def test_request_settings_apply_before_the_lock(endpoint):
    status, _, body = get(endpoint, "SELECT getSetting('max_threads')", max_threads="1")
    assert (status, body) == (200, b"1\n")
    status, headers, _ = get(endpoint, "SELECT 1", no_such_setting_xyz="1")
    assert status == 404 and headers["X-ClickHouse-Exception-Code"] == "115"


def test_sink_keeps_writing_while_the_endpoint_serves(endpoint, ch_client, db):
    ch_client.command(f"CREATE TABLE {db}.live (x UInt64) ENGINE = MergeTree ORDER BY x")
    stop = threading.Event()
    errors: list[str] = []

    def reader():
        while not stop.is_set():
            status, _, body = get(endpoint, f"SELECT count() FROM {db}.live")
            if status != 200:
                errors.append(body.decode())

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(20):
        ch_client.insert(f"{db}.live", [[i]], column_names=["x"])
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert get(endpoint, f"SELECT count(), sum(x) FROM {db}.live")[2] == b"20\t190\n"


# ------------------------------------------------------------------ lifecycle
def test_endpoint_file_is_written_and_removed(ch_client, tmp_path):
    ep = start_query_endpoint(ch_client, data_dir=tmp_path)
    info = read_endpoint_file(tmp_path)
    assert info["url"] == ep.url and info["port"] == ep.port
    ep.stop()
    assert read_endpoint_file(tmp_path) is None


def test_non_loopback_bind_is_refused(ch_client):
    with pytest.raises(ValueError, match="loopback"):
        start_query_endpoint(ch_client, "0.0.0.0")


def test_server_clients_are_refused_with_advice(http_client):
    # an HTTP client (here: one talking to this very endpoint) means a server with its own interface
    with pytest.raises(TypeError, match="own HTTP interface"):
        start_query_endpoint(http_client)
