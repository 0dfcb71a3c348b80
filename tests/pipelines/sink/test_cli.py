"""`depinflow sink` and `depinflow migrate` as an operator runs them: config file + env vars, JSON
logs on stderr, a summary on stdout. Separate processes, so each gets its own ClickHouse directory."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson

from tests.pipelines.sink.helpers import flow_events, ledger


def depinflow(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli.main", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)


def test_sink_command_with_config_file_and_env(sink_env, tmp_path):
    events = [e for e, _ in flow_events(ledger())[:200]]
    sink_env.publisher.flows(events)
    cfg = tmp_path / "sink.toml"
    # the consumer table: a 3 s group session (tests/kafkaread.py: the group join takes ~2 s instead of ~5 s)
    cfg.write_text(f'[kafka]\nbootstrap = "{sink_env.bootstrap}"\ngroup_id = "cli"\n'
                   f'consumer = {{ session_timeout_ms = 3000, heartbeat_interval_ms = 500 }}\n'
                   f'[sink]\nbatch_rows = 64\nbatch_seconds = 0.2\n')
    env = {"DEPINFLOW_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'ch'}", "DEPINFLOW_TOPIC_PREFIX": sink_env.topics.prefix,
           "DEPINFLOW_CLICKHOUSE_DATABASE": "clidb"}
    out = depinflow("sink", "--config", str(cfg), "--until-idle", "--idle-seconds", "1", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = orjson.loads(out.stdout.strip().splitlines()[-1])
    assert summary["messages"] == 200 and summary["dead_letters"] == 0
    assert sum(summary["rows"].values()) == 200 and summary["batches"] >= 200 // 64
    logs = [orjson.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    started = next(rec for rec in logs if rec["event"] == "sink_started")
    assert started["clickhouse"] == f"chdb://{tmp_path / 'ch'}" and started["database"] == "clidb"
    assert any(rec["event"] == "sink_batch_committed" for rec in logs)

    status = depinflow("migrate", "--status", env=env)
    assert status.returncode == 0, status.stderr
    assert status.stdout.split() == ["0001", "flow_tables", "applied", "0002", "instructions", "applied",
                                     "0003", "dead_letters", "applied", "0004", "commitment_status", "applied",
                                     "0005", "prices", "applied", "0006", "views", "applied",
                                     "0007", "rollups", "applied", "0008", "compact_insert_parts", "applied"]
    again = depinflow("migrate", env=env)
    assert again.returncode == 0 and "up to date" in again.stdout


def test_sink_command_redacts_the_dsn_password_in_logs(tmp_path):
    env = {"DEPINFLOW_CLICKHOUSE_DSN": "http://default:hunter2@127.0.0.1:9/x"}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli.main", "sink", "--bootstrap", "127.0.0.1:9"],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        while not any("sink_clickhouse_unavailable" in ln for ln in lines):   # ClickHouse unreachable
            lines.append(proc.stderr.readline())
    finally:
        proc.terminate()
        _, rest = proc.communicate(timeout=30)
    records = [orjson.loads(ln) for ln in lines + rest.splitlines() if ln.strip()]   # every line is JSON
    rec = next(r for r in records if r["event"] == "sink_clickhouse_unavailable")
    assert rec["level"] == "warning" and "default:***@127.0.0.1:9" in rec["error"]
    assert not any("hunter2" in ln for ln in lines + rest.splitlines())
