"""In-memory RPC counters that the service exports to Prometheus.

WHY not Prometheus objects here: indexer.* is a library layer (DESIGN.md); the service decides how to
export. Keeping plain counters also lets tests assert exact numbers per client without a global registry.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RpcStats:
    calls: Counter = field(default_factory=Counter)        # method -> JSON-RPC calls sent (batch items count)
    requests: int = 0                                      # HTTP requests sent
    errors: Counter = field(default_factory=Counter)       # (method, code label) -> errors seen
    retries: Counter = field(default_factory=Counter)      # (method, reason) -> calls retried
    latency_sum: float = 0.0                               # seconds spent in HTTP round trips
    rate_limited_seconds: float = 0.0                      # seconds asked to wait by Retry-After

    def on_request(self, methods: dict[str, int], seconds: float) -> None:
        self.requests += 1
        self.latency_sum += seconds
        self.calls.update(methods)

    def on_error(self, method: str, code: str) -> None:
        self.errors[(method, code)] += 1

    def on_retry(self, method: str, reason: str) -> None:
        self.retries[(method, reason)] += 1

    def total_errors(self, code: str | None = None) -> int:
        return sum(n for (_, c), n in self.errors.items() if code is None or c == code)

    def total_retries(self) -> int:
        return sum(self.retries.values())
