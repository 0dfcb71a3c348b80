"""`depinflow sql`: through the running service's endpoint, or directly on the data directory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from pipelines.query import start_query_endpoint


def depinflow(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli.main", *args], input=stdin,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def stopped_service_dir(tmp_path_factory) -> Path:
    """A data directory written by a service that has exited (a separate process: one chdb dir each)."""
    data_dir = tmp_path_factory.mktemp("stopped")
    script = textwrap.dedent(f"""
        from infra.local.clickhouse import chdb_dsn, get_client
        c = get_client(chdb_dsn({str(data_dir / "clickhouse")!r}))
        c.command("CREATE DATABASE depinflow")
        c.command("CREATE TABLE depinflow.t (x UInt8, s String) ENGINE = MergeTree ORDER BY x")
        c.command("INSERT INTO depinflow.t VALUES (1, 'a'), (2, 'b,c')")
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    return data_dir


@pytest.mark.parametrize("fmt, expected", [
    ("csv", '"x","s"\n1,"a"\n2,"b,c"\n'),
    ("tsv", "x\ts\n1\ta\n2\tb,c\n"),
    ("json", '{"x":1,"s":"a"}\n{"x":2,"s":"b,c"}\n'),
    ("table", "┌─x─┬─s───┐\n│ 1 │ a   │\n│ 2 │ b,c │\n└───┴─────┘\n"),
])
def test_without_a_service_it_opens_the_directory(stopped_service_dir, fmt, expected):
    out = depinflow("sql", "SELECT x, s FROM t ORDER BY x", "--data-dir", str(stopped_service_dir), "--format", fmt)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected
    assert "data directory" in out.stderr and "no running service" in out.stderr


def test_direct_mode_is_read_only_too(stopped_service_dir):
    out = depinflow("sql", "DROP TABLE t", "--data-dir", str(stopped_service_dir))
    assert out.returncode == 1
    assert out.stderr.startswith("Code: 164. DB::Exception: Cannot execute query in readonly mode")
    again = depinflow("sql", "SELECT count() FROM t", "--data-dir", str(stopped_service_dir), "--format", "tsv")
    assert again.stdout == "count()\n2\n"


def test_query_from_stdin_and_format_clause_wins(stopped_service_dir):
    out = depinflow("sql", "-", "--data-dir", str(stopped_service_dir), "--format", "table",
                    stdin="SELECT sum(x) AS s FROM t FORMAT JSONEachRow")
    assert (out.returncode, out.stdout) == (0, '{"s":3}\n')


def test_missing_directory_is_a_clear_error(tmp_path):
    out = depinflow("sql", "SELECT 1", "--data-dir", str(tmp_path / "nothing"))
    assert out.returncode == 1
    assert "no ClickHouse data" in out.stderr and "depinflow run" in out.stderr


def test_with_a_running_service_it_uses_the_endpoint(ch_client, tmp_path):
    db = f"svc_{uuid.uuid4().hex[:8]}"
    ch_client.command(f"CREATE DATABASE {db}")
    ch_client.command(f"CREATE TABLE {db}.t (x UInt8) ENGINE = MergeTree ORDER BY x")
    ch_client.command(f"INSERT INTO {db}.t VALUES (7), (8)")
    try:
        with start_query_endpoint(ch_client, data_dir=tmp_path) as ep:
            out = depinflow("sql", "SELECT sum(x) FROM t", "--data-dir", str(tmp_path), "--database", db,
                            "--format", "csv")
            refused = depinflow("sql", f"INSERT INTO {db}.t VALUES (1)", "--data-dir", str(tmp_path))
        assert out.returncode == 0, out.stderr
        assert out.stdout == '"sum(x)"\n15\n'
        assert f"query endpoint at {ep.url}" in out.stderr
        assert not (tmp_path / "clickhouse").exists()  # the directory was never opened
        assert refused.returncode == 1 and "Code: 164" in refused.stderr
        assert ch_client.query(f"SELECT count() FROM {db}.t").result_rows == [(2,)]
    finally:
        ch_client.command(f"DROP DATABASE {db} SYNC")


def test_a_stale_endpoint_file_falls_back_to_the_directory(stopped_service_dir):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    stale = stopped_service_dir / "query.json"
    stale.write_text(json.dumps({"url": f"http://127.0.0.1:{dead_port}", "port": dead_port}))
    try:
        out = depinflow("sql", "SELECT count() FROM t", "--data-dir", str(stopped_service_dir), "--format", "tsv")
    finally:
        stale.unlink()
    assert (out.returncode, out.stdout) == (0, "count()\n2\n")
    assert "data directory" in out.stderr


def test_a_directory_held_by_another_process_is_a_clear_error(tmp_path):
    # a service that holds the directory but has no answering endpoint (e.g. still starting)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from infra.local.clickhouse import chdb_dsn, get_client
        get_client(chdb_dsn({str(tmp_path / "clickhouse")!r}))
        print("ready", flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        out = depinflow("sql", "SELECT 1", "--data-dir", str(tmp_path))
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 1
    assert f"cannot open {tmp_path / 'clickhouse'}" in out.stderr and "query endpoint did not answer" in out.stderr
