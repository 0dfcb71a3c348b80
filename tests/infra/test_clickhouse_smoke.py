"""The embedded ClickHouse engine dedups with ReplacingMergeTree and keeps data across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from infra.local.clickhouse import chdb_dsn, get_client


def test_replacing_merge_tree_dedups_with_final(ch_client, ch_database):
    t = f"{ch_database}.flows"
    ch_client.command(
        f"CREATE TABLE {t} (event_id String, amount UInt64, version UInt64, is_deleted UInt8) "
        "ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY event_id"
    )
    cols = ["event_id", "amount", "version", "is_deleted"]
    ch_client.insert(t, [["a", "b"], [10, 20], [1, 1], [0, 0]], column_names=cols, column_oriented=True)
    ch_client.insert(t, [["a", "b"], [10, 20], [1, 2], [0, 1]], column_names=cols, column_oriented=True)
    assert ch_client.query(f"SELECT count() FROM {t}").result_rows == [(4,)]
    rows = ch_client.query(f"SELECT event_id, amount FROM {t} FINAL ORDER BY event_id").result_rows
    assert rows == [("a", 10)]  # duplicate of a collapsed, b deleted by its newer version


def test_data_directory_reopens_in_a_new_process(tmp_path):
    dsn = chdb_dsn(tmp_path / "ch")
    script = textwrap.dedent(f"""
        from infra.local.clickhouse import get_client
        c = get_client({dsn!r})
        c.command("CREATE TABLE IF NOT EXISTS default.kept (x UInt64) ENGINE = MergeTree ORDER BY x")
        c.insert("default.kept", [[1], [2], [3]], column_names=["x"])
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    # chdb binds one data directory per process, so the reader is a second, fresh process.
    reader = textwrap.dedent(f"""
        from infra.local.clickhouse import get_client
        print(get_client({dsn!r}).query("SELECT sum(x), count() FROM default.kept").result_rows)
    """)
    out = subprocess.run([sys.executable, "-c", reader], check=True, timeout=120, capture_output=True, text=True)
    assert out.stdout.strip() == "[(6, 3)]"


def test_second_embedded_directory_in_one_process_is_a_clear_error(ch_client, tmp_path):
    import pytest

    from infra.local.clickhouse import ClickHouseDsnError

    with pytest.raises(ClickHouseDsnError, match="one engine per process|cannot open a second"):
        get_client(chdb_dsn(tmp_path / "other"))
