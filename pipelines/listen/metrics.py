"""Prometheus metrics of the listener, read at scrape time from the components' own counters.

WHY a collector over plain counters: the RPC client, the sources and the processor keep simple
in-memory counters (the indexer layer knows nothing of Prometheus); exporting them at scrape time
costs nothing on the hot path. Each Listener has its own registry, so several can run in one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from pipelines.listen.service import Listener

P = "depinflow_listener_"


class ListenerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.kafka_send_seconds = Histogram(
            P + "kafka_send_seconds", "Submit-to-acknowledgement time of one transaction's messages",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry)
        self._server = None

    def attach(self, listener: Listener) -> None:
        self.registry.register(_Collector(listener))

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        self._server = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            server, thread = self._server
            server.shutdown()
            thread.join(5)
            self._server = None


class _Collector(Collector):
    def __init__(self, listener: Listener) -> None:
        self.l = listener

    def collect(self) -> Iterator:
        src = self.l.source_stats
        rpc = self.l.rpc_stats
        proc = self.l.process_stats

        def counter(name: str, doc: str, labels: list[str], items) -> CounterMetricFamily:
            fam = CounterMetricFamily(P + name, doc, labels=labels)
            for key, value in items:
                fam.add_metric([str(k) for k in (key if isinstance(key, tuple) else (key,))], value)
            return fam

        def gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
            fam = GaugeMetricFamily(P + name, doc)
            if value is not None:
                fam.add_metric([], value)
            return fam

        yield counter("transactions", "Transactions decoded, classified and submitted, by source",
                      ["source"], src.txs.items())
        yield counter("events", "Flow events published, by network and class", ["network", "flow_class"],
                      proc.events.items())
        yield counter("instructions", "Instruction records published", [], [((), proc.instructions)])
        yield counter("dead_letters", "Dead letters published, by stage and reason", ["stage", "reason"],
                      proc.dead_letters.items())
        yield counter("status_records", "Status records published (finalized / retracted)", ["status"],
                      proc.statuses.items())
        yield counter("failed_transactions", "Failed transactions seen (recorded, never flows)", [],
                      [((), proc.failed_txs)])
        yield counter("rpc_calls", "JSON-RPC calls sent (batch items count), by method", ["method"],
                      rpc.calls.items())
        yield counter("rpc_errors", "JSON-RPC errors, by method and code (http_429, transport, -32004 ...)",
                      ["method", "code"], rpc.errors.items())
        yield counter("rpc_retries", "JSON-RPC calls retried, by method and reason", ["method", "reason"],
                      rpc.retries.items())
        yield counter("source_retries", "RPC operations the sources retried after the client gave up",
                      ["operation"], src.source_retries.items())
        yield counter("duplicates_after_restart", "Transactions re-sent after a restart that may already "
                      "be on Kafka (the sink deduplicates them by event_id)", [], [((), src.replayed)])
        yield counter("dedup_hits", "Signatures listed again (several addresses, hints) and processed once",
                      ["source"], src.dedup_hits.items())
        yield counter("ws_reconnects", "Websocket reconnections (each triggers a reconciliation sweep)", [],
                      [((), src.ws_reconnects)])
        yield counter("sweeps", "Reconciliation sweeps", [], [((), src.sweeps)])
        yield gauge("tip_slot", "Newest confirmed slot seen", src.tip_slot or None)
        yield gauge("finalized_slot", "Newest finalized slot seen", src.finalized_slot or None)
        yield gauge("live_slot", "Every live transaction up to this slot is acknowledged by Kafka", src.live_slot)
        lag = (src.tip_slot - src.live_slot) if src.tip_slot and src.live_slot is not None else None
        yield gauge("slot_lag", "tip_slot - live_slot (slots not yet published)", max(0, lag) if lag is not None
                    else None)
        cp = self.l.follower.cp if self.l.follower else None
        yield gauge("checkpoint_backfill_slot", "Durable backfill position: every tx above it (up to the seam) "
                    "is done", cp.backfill_low_slot if cp else None)
        yield gauge("checkpoint_live_slot", "Durable live position: every tx up to it is done and final",
                    cp.live_slot if cp else None)
        yield gauge("checkpoint_block_slot", "Block mode: every slot up to it is done and final",
                    cp.block_slot if cp else None)
        yield gauge("seam_slot", "Slot where the backfill ends and the live tail begins",
                    cp.seam_slot if cp else None)
        source = (self.l.follower.backfill or self.l.follower.walker) if self.l.follower else None
        progress = source.progress if source is not None else None
        frac = progress.fraction() if progress else None
        yield gauge("backfill_progress", "Share of the backfill range committed (0..1)", frac)
