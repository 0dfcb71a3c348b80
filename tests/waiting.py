"""Shared by the broker-outage tests of the listener and the sink: a service still waiting, then stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def seconds_to_stop_while_waiting(target: Callable[[], object], stop: threading.Event, wait: float = 1.5) -> float:
    """Run `target` in a thread, check it is still running (waiting) after `wait` s, set `stop`, and return
    how long it took to end (an AssertionError if it is still running 15 s later)."""
    runner = threading.Thread(target=target, daemon=True)
    runner.start()
    time.sleep(wait)
    assert runner.is_alive(), "ended before the stop: it did not wait for the broker"
    t0 = time.monotonic()
    stop.set()
    runner.join(15)
    assert not runner.is_alive(), "still running 15 s after the stop"
    return time.monotonic() - t0
