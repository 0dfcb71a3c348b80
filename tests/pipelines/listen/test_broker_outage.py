"""A listener started while the broker is down waits for it (and says so) instead of exiting, then
publishes exactly the ground truth; a stop during that wait ends it promptly and cleanly. Against the
chain simulator and a real tansu broker of the test's own, stopped and started again on the same port."""

from __future__ import annotations

import threading
import time

from indexer.devchain import serve_in_thread
from infra.local.broker import LocalBroker
from pipelines.listen.service import Listener
from tests.pipelines.listen.test_listener_sim import assert_truth, config, ledger  # noqa: F401 - fixture
from tests.waiting import seconds_to_stop_while_waiting


def test_listener_started_during_a_broker_outage_waits_then_publishes_the_truth(ledger, tmp_path):  # noqa: F811
    broker = LocalBroker(tmp_path / "broker").start()
    broker.stop()                                     # the port is known, nothing answers on it
    result: dict = {}
    try:
        with serve_in_thread(ledger) as node:
            listener = Listener(config(node, broker.bootstrap, "outage", tmp_path, websocket=False, page_limit=300,
                                       kafka_client="confluent"))

            def run() -> None:
                try:
                    result["summary"] = listener.run_until_caught_up(timeout=300)
                except BaseException as exc:  # noqa: BLE001 - asserted below
                    result["error"] = exc

            runner = threading.Thread(target=run, daemon=True)
            runner.start()
            time.sleep(3.0)
            assert runner.is_alive() and "error" not in result, result   # waiting, not crashed
            broker.start()                                                # same port
            runner.join(300)
        assert "error" not in result, result
        assert result["summary"].dead_letters == 0
        assert_truth(ledger, broker.bootstrap, "outage")
    finally:
        broker.stop()


def test_a_stop_while_waiting_for_the_broker_ends_the_listener_promptly(ledger, tmp_path):  # noqa: F811
    broker = LocalBroker(tmp_path / "broker").start()
    broker.stop()
    stop = threading.Event()
    result: dict = {}
    with serve_in_thread(ledger) as node:
        listener = Listener(config(node, broker.bootstrap, "gone", tmp_path, websocket=False))

        def run() -> None:
            result["summary"] = listener.run(stop)

        assert seconds_to_stop_while_waiting(run, stop) < 5
    assert result["summary"].unacknowledged == 0
    assert listener.follower is None                 # nothing was started: no checkpoint, nothing read
