"""Prometheus metrics of one sink, in its own registry (several sinks may share a process in tests
or run next to the listener; a private registry keeps their series apart)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class SinkMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rows = Counter("depinflow_sink_rows", "rows inserted, by table", ["table"], registry=r)
        self.rows_per_second = Gauge("depinflow_sink_rows_per_second",
                                     "rows/s of the last batch, by table", ["table"], registry=r)
        self.messages = Counter("depinflow_sink_messages", "messages consumed, by topic", ["topic"],
                                registry=r)
        self.batch_seconds = Histogram(
            "depinflow_sink_batch_seconds", "time to insert, reconcile and commit one batch", registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.batch_rows = Histogram("depinflow_sink_batch_rows", "rows per flushed batch", registry=r,
                                    buckets=(1, 10, 100, 1000, 5000, 10_000, 25_000, 50_000, 100_000))
        self.insert_errors = Counter("depinflow_sink_insert_errors",
                                     "failed inserts (kind: unavailable = retried, row = dead-lettered)",
                                     ["table", "kind"], registry=r)
        self.dead_letters = Counter("depinflow_sink_dead_letters",
                                    "messages the sink turned into dead letters, by stage and reason",
                                    ["stage", "reason"], registry=r)
        self.lag = Gauge("depinflow_sink_consumer_lag",
                         "high watermark (from fetch responses) minus committed offset",
                         ["topic", "partition"], registry=r)
        self.committed = Gauge("depinflow_sink_committed_offset", "last committed offset",
                               ["topic", "partition"], registry=r)
        self.offsets_skipped = Counter("depinflow_sink_offsets_skipped",
                                       "offsets the consumer never handed out, given up after refetching (gaps.py)",
                                       ["topic", "partition"], registry=r)
        self.retries = Counter("depinflow_sink_retries", "batch retries while ClickHouse is unavailable",
                               registry=r)
        self.last_commit = Gauge("depinflow_sink_last_commit_timestamp_seconds",
                                 "unix time of the last successful offset commit", registry=r)

    def serve(self, port: int, host: str = "127.0.0.1"):
        """Expose /metrics over HTTP; returns (server, thread) so the caller can shut it down."""
        return start_http_server(port, addr=host, registry=self.registry)
