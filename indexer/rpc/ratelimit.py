"""Token buckets per RPC method plus a global one, paused by 429 Retry-After.

WHY per method: public and paid endpoints limit both the total request rate and each method separately
(mainnet: 100 req/10 s per IP, 40 req/10 s per method). A client that only limits the total gets 429s on
its heaviest method (getTransaction) while it has budget to spare elsewhere.
WHY honour Retry-After: retrying a throttled endpoint sooner than it asked only earns more 429s (and,
on public endpoints, a 403 block).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """`rate` tokens per second up to `burst`; `rate=None` means unlimited.

    Acquiring more tokens than are available puts the bucket in debt, so a batch of 100 calls against a
    40/s limit waits its fair share instead of being refused forever.
    """

    rate: float | None
    burst: float = 0.0
    _tokens: float = field(init=False, default=0.0)
    _stamp: float = field(init=False, default_factory=time.monotonic)
    _paused_until: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if self.rate is not None and self.burst <= 0:
            self.burst = max(1.0, self.rate)
        self._tokens = self.burst

    def _refill(self, now: float) -> None:
        if self.rate is None:
            return
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def pause(self, seconds: float) -> None:
        """Stop granting tokens for `seconds` (a server's Retry-After)."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    def delay_for(self, n: float, now: float | None = None) -> float:
        """Seconds to wait before `n` tokens may be taken (0 = take them now)."""
        now = time.monotonic() if now is None else now
        wait = max(0.0, self._paused_until - now)
        if self.rate is None:
            return wait
        self._refill(now)
        need = min(n, self.burst)
        if self._tokens < need:
            wait = max(wait, (need - self._tokens) / self.rate)
        return wait

    def take(self, n: float) -> None:
        if self.rate is not None:
            self._refill(time.monotonic())
            self._tokens -= n


class RateLimiter:
    """A global bucket and one bucket per method; `limits` maps method -> req/s ("*" = global)."""

    def __init__(self, limits: Mapping[str, float] | None = None, burst_seconds: float = 1.0) -> None:
        limits = dict(limits or {})
        self._burst_seconds = burst_seconds
        total = limits.pop("*", None)
        self._global = TokenBucket(total, (total or 0) * burst_seconds)
        self._buckets = {m: TokenBucket(r, r * burst_seconds) for m, r in limits.items()}
        self._lock = asyncio.Lock()
        self.waited_seconds = 0.0

    def _bucket(self, method: str) -> TokenBucket | None:
        return self._buckets.get(method)

    async def acquire(self, counts: Mapping[str, int]) -> None:
        """Wait until every method in `counts` (and the global bucket) can spend its calls, then spend."""
        if self._global.rate is None and not self._buckets and self._global.delay_for(0) <= 0:
            return  # unlimited and not paused: no lock, no clock reads on the hot path
        async with self._lock:  # FIFO fairness: one waiter computes and sleeps at a time
            while True:
                now = time.monotonic()
                total = sum(counts.values())
                delay = self._global.delay_for(total, now)
                for method, n in counts.items():
                    bucket = self._bucket(method)
                    if bucket is not None:
                        delay = max(delay, bucket.delay_for(n, now))
                if delay <= 0:
                    break
                self.waited_seconds += delay
                await asyncio.sleep(delay)
            self._global.take(total)
            for method, n in counts.items():
                bucket = self._bucket(method)
                if bucket is not None:
                    bucket.take(n)

    def pause(self, methods: list[str], seconds: float) -> None:
        """Apply a 429's Retry-After: we cannot tell which limit tripped, so pause global and methods."""
        self._global.pause(seconds)
        for method in methods:
            bucket = self._bucket(method)
            if bucket is not None:
                bucket.pause(seconds)
