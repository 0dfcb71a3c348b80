"""`depinflow infra up|status|down` as a user runs it: separate processes, nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from infra.local.state import InfraState, pid_alive

DEPINFLOW = [sys.executable, "-m", "pipelines.cli.main"]


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*DEPINFLOW, *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=120)


def test_up_status_down(tmp_path):
    up = _cli("infra", "up", data_dir=tmp_path)
    assert up.returncode == 0, up.stderr
    state = InfraState.load(tmp_path)
    try:
        status = _cli("infra", "status", data_dir=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["broker"]["healthy"] is True
        assert report["broker"]["bootstrap"] == state.bootstrap
        assert report["clickhouse"]["healthy"] is True
    finally:
        down = _cli("infra", "down", data_dir=tmp_path)
    assert down.returncode == 0, down.stderr
    assert not pid_alive(state.broker_pid), "broker still running after `infra down`"
    after = _cli("infra", "status", data_dir=tmp_path)
    assert after.returncode == 1
    assert json.loads(after.stdout)["broker"]["healthy"] is False


def test_durable_up_and_down_stops_moto_too(tmp_path):
    up = _cli("infra", "up", "--durable", data_dir=tmp_path)
    assert up.returncode == 0, up.stderr
    state = InfraState.load(tmp_path)
    assert state.storage.startswith("s3://") and state.moto_pid
    assert _cli("infra", "down", data_dir=tmp_path).returncode == 0
    assert not pid_alive(state.broker_pid) and not pid_alive(state.moto_pid)
