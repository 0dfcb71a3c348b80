"""How fast messages are arriving: tells a live trickle from a backlog streaming in.

WHY: a caught-up sink writes at once (Sink._ready), which is right for live traffic (a few hundred
rows a second; waiting would only add lag) but wrong while a listener backfills into the topics the sink
keeps up with: then every write finds a few thousand new rows and pays the engine's fixed cost per INSERT
statement (tens of ms each, several statements per write) again and again. Above `bulk_rate` messages a
second the sink batches as if it were behind, by batch_rows or BULK_BATCH_SECONDS, and writes early
only once the stream goes quiet for QUIET_SECONDS (the end of a backfill, or a pause).
"""

from __future__ import annotations

from collections import deque

WINDOW_SECONDS = 1.0      # the rate is the messages polled over the last second
QUIET_SECONDS = 0.2       # no message for this long: the stream paused, write what is held
# While streaming, a batch may grow this old (or to batch_rows) before it is due, whatever batch_seconds
# says: rows of a backfill are visible within seconds anyway, and every write costs the engine a fixed
# ~0.3 CPU-s (its statements), so 1 s batches spent ~30 % of a core on that alone.
BULK_BATCH_SECONDS = 5.0


class InflowMeter:
    """Messages per second over the last WINDOW_SECONDS, and when the last one came."""

    def __init__(self, bulk_rate: float) -> None:
        self.bulk_rate = bulk_rate
        self._polls: deque[tuple[float, int]] = deque()
        self._in_window = 0
        self.last_arrival = float("-inf")

    def record(self, now: float, count: int) -> None:
        """Count one poll's messages (call only when it returned some)."""
        self._polls.append((now, count))
        self._in_window += count
        self.last_arrival = now
        self._expire(now)

    def rate(self, now: float) -> float:
        self._expire(now)
        return self._in_window / WINDOW_SECONDS

    def streaming(self, now: float) -> bool:
        """A backlog is streaming in: at or above bulk_rate and not paused. bulk_rate 0: never."""
        if self.bulk_rate <= 0 or now - self.last_arrival >= QUIET_SECONDS:
            return False
        return self.rate(now) >= self.bulk_rate

    def _expire(self, now: float) -> None:
        polls = self._polls
        while polls and now - polls[0][0] > WINDOW_SECONDS:
            self._in_window -= polls.popleft()[1]
