"""kill -9 the `depinflow listen` process at random points, restart it, and still publish the truth.

The listener runs as a real subprocess (the CLI), the simulator serves from this process and keeps
producing blocks, the broker is the session's tansu. After the kills a last run with --until-caught-up
finishes; the flows topic, deduplicated by event_id, must equal the ground truth. Duplicates are
allowed (counted), gaps are not.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from indexer.devchain import SimConfig, generate_ledger, serve_in_thread
from tests.pipelines.listen.simtruth import consume, expected, final_flows, totals

ROOT = Path(__file__).resolve().parents[3]
KILLS = int(os.environ.get("DEPINFLOW_KILLS", "12" if os.environ.get("DEPINFLOW_LONG") == "1" else "3"))


@pytest.fixture(scope="module")
def ledger():
    return generate_ledger(SimConfig(seed=11, days=1, slots_per_day=1600))


def listen_cmd(node, bootstrap: str, prefix: str, checkpoint: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli.main", "listen", "--rpc-url", node.url, "--ws-url", node.ws_url,
            "--bootstrap", bootstrap, "--topic-prefix", prefix, "--checkpoint", str(checkpoint),
            "--progress", "off", "--sweep-interval", "0.3", "--rpc-batch", "20", "--log-level", "WARNING", *extra]


@pytest.mark.parametrize("workers", [0, 2])
def test_kill9_at_random_points_then_restart_gives_the_truth(ledger, bootstrap, unique_name, tmp_path, workers):
    """workers=2: the backfill runs in worker processes (forks of the listener, made before it starts
    any thread: Listener.prefork_workers); a kill -9 of the
    listener leaves them to finish their chunks and exit, the checkpoint never covers their work."""
    rng = random.Random(int(os.environ.get("DEPINFLOW_KILL_SEED", "20261126")) + workers)
    prefix = unique_name("lk")
    extra = ("--workers", str(workers)) if workers else ()
    checkpoint = tmp_path / "listener.json"
    start = len(ledger.blocks) - 400
    killed_at = []
    with serve_in_thread(ledger, start_at=start) as node:
        for _ in range(KILLS):
            proc = subprocess.Popen(listen_cmd(node, bootstrap, prefix, checkpoint, *extra), cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            delay = rng.uniform(2.0, 6.0)   # start-up, backfill, live: wherever it happens to be
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                node.advance(3)
                time.sleep(0.1)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            killed_at.append(round(delay, 2))
        node.finalize_all()
        done = subprocess.run(listen_cmd(node, bootstrap, prefix, checkpoint, "--until-caught-up", *extra), cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = orjson.loads(done.stdout.strip().splitlines()[-1])

    flows, status, raw = final_flows(bootstrap, prefix)
    retracted = {eid for eid, ev in flows.items() if status.get(ev["signature"]) == "retracted"}
    final = {eid: ev for eid, ev in flows.items() if eid not in retracted}
    want = expected(ledger)
    assert set(final) == set(want), f"killed after {killed_at} s"
    assert totals(final.values()) == totals(want.values())
    duplicates = raw - len(flows)
    # duplicates are allowed; the restarted runs count what they re-sent (an estimate of them)
    print(f"kills at {killed_at} s; flow messages {raw}, unique {len(flows)}, duplicates {duplicates}, "
          f"re-sent after restart (last run) {summary['duplicates_after_restart']}")
    assert consume(bootstrap, f"{prefix}.status.v1") is not None


def test_sigterm_flushes_checkpoints_and_exits_zero(ledger, bootstrap, unique_name, tmp_path):
    prefix = unique_name("lt")
    checkpoint = tmp_path / "listener.json"
    with serve_in_thread(ledger, start_at=len(ledger.blocks) - 100) as node:
        proc = subprocess.Popen(listen_cmd(node, bootstrap, prefix, checkpoint, "--log-level", "INFO"), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:           # wait until the backfill committed something
            if checkpoint.exists() and orjson.loads(checkpoint.read_bytes()).get("backfill_low_slot") is not None:
                break
            time.sleep(0.2)
        node.advance(20)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    summary = orjson.loads(out.strip().splitlines()[-1])
    assert summary["transactions"] > 0
    saved = orjson.loads(checkpoint.read_bytes())
    assert saved["seam_slot"] == summary["seam_slot"]
    assert "listener_stopped" in err and "api-key" not in err
