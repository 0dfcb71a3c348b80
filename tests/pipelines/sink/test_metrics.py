"""The Prometheus endpoint serves the sink's own registry."""

from __future__ import annotations

import urllib.request

from infra.local.ports import free_port


def test_metrics_endpoint_serves_sink_series(sink_env):
    port = free_port("127.0.0.1")
    sink = sink_env.sink("g", metrics_port=port)
    sink.start()
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        sink.close()
    for name in ("depinflow_sink_batch_seconds_bucket", "depinflow_sink_retries_total",
                 "depinflow_sink_last_commit_timestamp_seconds"):
        assert name in body
    assert "python_gc_objects_collected_total" not in body      # a private registry, not the global one
