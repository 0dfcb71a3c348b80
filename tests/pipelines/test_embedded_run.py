"""The front door: `depinflow run` on the embedded default, as a user runs it (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.local.state import pid_alive

DEPINFLOW = [sys.executable, "-m", "pipelines.cli.main"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOLANA_", "DEPINFLOW_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*DEPINFLOW, *args], capture_output=True, text=True, timeout=timeout, env=_env())


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(("mode", "discovery"), [("addresses", "addresses"), ("blocks", "all")])
def test_run_until_caught_up_equals_ground_truth_and_report_totals(tmp_path: Path, mode: str, discovery: str):
    data = tmp_path / "data"
    run = _cli("run", "--until-caught-up", "--data-dir", str(data), "--seed", "11", "--mode", mode, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "indexing the built-in chain simulator" in run.stderr
    assert "ClickHouse totals are EQUAL to the simulator's ground truth" in run.stderr
    assert "== HELIUM ==" in run.stdout and "== RENDER ==" in run.stdout
    assert "Who pays?" in run.stdout

    truth = _cli("devchain", "truth", "--seed", "11", "--days", "1", "--discovery", discovery)
    report = _cli("report", "--totals", "--data-dir", str(data))
    assert truth.returncode == 0 and report.returncode == 0, report.stderr
    assert _jsonl(report.stdout) == _jsonl(truth.stdout)
    assert len(_jsonl(truth.stdout)) > 10


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_sql_answers_while_running_and_ctrl_c_stops_everything(tmp_path: Path):
    data = tmp_path / "data"
    log = open(tmp_path / "run.log", "w")
    # the child gets Ctrl-C's default handling whatever pytest inherited: a suite started in the background
    # (`cmd &` without job control, nohup) ignores SIGINT, the child inherited SIG_IGN and Python then installs
    # no KeyboardInterrupt handler, so the Ctrl-C below did nothing and the test hung 90 s
    proc = subprocess.Popen([*DEPINFLOW, "run", "--data-dir", str(data), "--seed", "5"], stdout=log,
                            stderr=subprocess.STDOUT, env=_env(), start_new_session=True,
                            preexec_fn=_default_sigint)
    try:
        _wait_for(lambda: "following the chain" in (tmp_path / "run.log").read_text(), 600, "catch-up")
        assert (data / "query.json").exists()
        sql = _cli("sql", "SELECT count() AS n FROM depinflow.flows", "--data-dir", str(data), "--format", "json")
        assert sql.returncode == 0, sql.stderr
        assert "endpoint" in sql.stderr.lower()     # it went through the running service, not the directory
        assert int(_jsonl(sql.stdout)[0]["n"]) > 1000
        refused = _cli("sql", "DROP TABLE depinflow.usage_fees", "--data-dir", str(data))
        assert refused.returncode != 0 and "readonly" in (refused.stderr + refused.stdout).lower()
        broker_pids = subprocess.run(["pgrep", "-f", f"tansu.*{data}"], capture_output=True, text=True).stdout.split()
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=90)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    assert code in (0, 130), (tmp_path / "run.log").read_text()[-3000:]
    assert not (data / "query.json").exists()
    for pid in children + broker_pids:
        assert not pid_alive(int(pid)), f"child {pid} survived Ctrl-C"
