"""SIGTERM stops `depinflow listen` promptly even when Kafka cannot acknowledge (issue 6, item 6).

Regression: the stop flushed the live producer for up to 30 s and then the backfill producer for
another 30 s. With the broker killed (or just restarted) librdkafka keeps retrying undelivered
messages for delivery.timeout.ms (120 s), so a SIGTERM stop took 30-60 s and the crash suite's
supervisor killed it. Now one --shutdown-grace bounds the flush; giving up is reported (log line
`listener_stop_unacknowledged`, exit code 3) and is safe: the checkpoint never covers an
unacknowledged message, so the next start re-sends it and the topic still holds the ground truth.

The listener is the real CLI subprocess; the broker is this test's own durable tansu (S3 on moto),
killed -9 and restarted here; the simulator serves from this process and keeps producing blocks.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from indexer.devchain import SimConfig, generate_ledger, serve_in_thread
from infra.local.broker import LocalBroker
from pipelines.cli.cmd_listen import EXIT_UNACKNOWLEDGED
from tests.pipelines.listen.simtruth import expected, final_flows, totals
from tests.pipelines.listen.test_kill9 import ROOT, listen_cmd

GRACE = 2.0
# the stop is bounded by the grace period plus the teardown (RPC client, threads, interpreter exit);
# the generous slack is for a loaded 2-core machine. Before the fix: >= 30 s with the broker down.
STOP_BOUND = GRACE + 8.0


def _checkpoint(path: Path) -> dict:
    try:
        return orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}


def _advance_for(node, seconds: float, blocks: int = 2, step: float = 0.1) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        node.advance(blocks)
        time.sleep(step)


def _start(node, bootstrap: str, prefix: str, checkpoint: Path, client: str) -> subprocess.Popen:
    return subprocess.Popen(listen_cmd(node, bootstrap, prefix, checkpoint, "--log-level", "INFO",
                                       "--shutdown-grace", str(GRACE), "--kafka-client", client),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_live(node, proc: subprocess.Popen, checkpoint: Path, after: int = 0, timeout: float = 90.0) -> None:
    """Until the backfill is done and this run's live tail saved a position past `after` (the chain
    advancing meanwhile): the process is then past start-up, its signal handlers installed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        cp = _checkpoint(checkpoint)
        if cp.get("backfill_low_slot") is not None and (cp.get("live_slot") or 0) > after:
            return
        _advance_for(node, 0.3)
    pytest.fail("the listener did not reach the live tail")


def _sigterm(proc: subprocess.Popen) -> tuple[float, int, str, str]:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"no exit 90 s after SIGTERM: {err[-3000:]}")
    return time.monotonic() - t0, proc.returncode, out, err


@pytest.mark.timeout(420)
@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_sigterm_with_broker_down_and_just_restarted_is_prompt_and_loses_nothing(tmp_path, client):
    ledger = generate_ledger(SimConfig(seed=29, slots_per_day=1200))
    prefix = "st"
    checkpoint = tmp_path / "listener.json"
    broker = LocalBroker(tmp_path / "broker", durable=True).start()
    stops = []
    try:
        with serve_in_thread(ledger, start_at=len(ledger.blocks) - 300) as node:
            # 1. broker killed -9 while the live tail publishes: SIGTERM must give up after the grace
            proc = _start(node, broker.bootstrap, prefix, checkpoint, client)
            _wait_live(node, proc, checkpoint)
            broker.kill()
            _advance_for(node, 2.0)     # new transactions: fetched, handed to the producer, never acked
            seconds, rc, out, err = _sigterm(proc)
            stops.append(("broker down", round(seconds, 1), rc))
            assert seconds < STOP_BOUND, (stops, err[-3000:])
            assert rc == EXIT_UNACKNOWLEDGED, (stops, err[-3000:])
            summary = orjson.loads(out.strip().splitlines()[-1])
            assert summary["unacknowledged"] > 0
            assert "listener_stop_unacknowledged" in err and "follower_stopped" in err
            assert _checkpoint(checkpoint)["live_slot"] == summary["live_slot"]

            # 2. SIGTERM right after a broker restart (kill -9 + start on durable storage)
            broker.restart()
            proc = _start(node, broker.bootstrap, prefix, checkpoint, client)
            _wait_live(node, proc, checkpoint, after=summary["live_slot"])
            broker.restart()
            _advance_for(node, 0.5)
            seconds, rc, out, err = _sigterm(proc)
            stops.append(("broker restarted", round(seconds, 1), rc))
            assert seconds < STOP_BOUND, (stops, err[-3000:])
            assert rc in (0, EXIT_UNACKNOWLEDGED), (stops, err[-3000:])
            # exit 0 exactly when nothing was given up, and the log says so when something was
            assert (rc == EXIT_UNACKNOWLEDGED) == ("listener_stop_unacknowledged" in err), (stops, err[-3000:])

            # 3. what the stops gave up is re-sent by the next run: the topic holds exactly the truth
            node.finalize_all()
            done = subprocess.run(listen_cmd(node, broker.bootstrap, prefix, checkpoint, "--until-caught-up"),
                                  cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-3000:]
            last = orjson.loads(done.stdout.strip().splitlines()[-1])
            assert last["unacknowledged"] == 0

        flows, status, raw = final_flows(broker.bootstrap, prefix)
    finally:
        broker.stop()
    final = {eid: ev for eid, ev in flows.items() if status.get(ev["signature"]) != "retracted"}
    want = expected(ledger)
    assert set(final) == set(want), stops
    assert totals(final.values()) == totals(want.values())
    assert raw >= len(flows)      # duplicates are allowed (the sink deduplicates by event_id)
    print(f"{client}: SIGTERM stops (case, seconds, exit code): {stops}; flow messages {raw}, unique {len(flows)}")
