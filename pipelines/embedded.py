"""The embedded default, wired: broker child process + in-process ClickHouse + sink + listener
(+ the chain simulator when no RPC endpoint is given) + the read-only SQL endpoint.

`depinflow run` is a thin CLI over `EmbeddedRun`; tests drive the same class. Everything runs in
this one process except the broker (a child), because chdb allows one process per data directory
and the query endpoint must share the engine the sink writes to.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.local.broker import LocalBroker
from infra.local.clickhouse import chdb_dsn, get_client
from pipelines.listen.config import ListenerConfig
from pipelines.listen.service import Listener, ListenerSummary
from pipelines.sink.config import SinkConfig
from pipelines.sink.service import Sink, SinkStats

log = logging.getLogger("depinflow.run")


@dataclass
class RunOptions:
    data_dir: Path
    rpc_url: str | None = None          # None: the built-in chain simulator
    ws_url: str | None = None
    networks: tuple[str, ...] = ("helium", "render")
    days: int = 1
    seed: int = 7
    start_day: str = "2026-03-28"       # simulator: first simulated UTC day
    since: str | None = None            # real RPC: backfill lower bound (YYYY-MM-DD)
    realtime: bool = False              # simulator: serve at real cadence (~400 ms slots)
    durable_broker: bool = False
    database: str = "depinflow"
    query_port: int = 0
    progress: str = "auto"
    partitions: int = 3
    mode: str = "addresses"             # listener discovery: addresses | blocks (getBlock walk)


@dataclass
class RunSummary:
    source: str
    listener: ListenerSummary | None = None
    sink_rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    truth_matches: bool | None = None   # simulator only: ClickHouse totals == ground truth
    truth_diff: list[str] = field(default_factory=list)


class EmbeddedRun:
    """Start with `start()`, then `run_until_caught_up()` or `follow(stop)`; always `stop()`."""

    def __init__(self, options: RunOptions) -> None:
        self.o = options
        self.o.data_dir = Path(self.o.data_dir).resolve()
        self.broker: LocalBroker | None = None
        self.ledger = None
        self.sim = None
        self.client = None
        self.endpoint = None
        self._sink: Sink | None = None
        self._sink_stop = threading.Event()
        self._sink_thread: threading.Thread | None = None
        self._sink_stats: list[SinkStats] = []
        self._started = time.monotonic()

    # ------------------------------------------------------------------ lifecycle
    @property
    def simulated(self) -> bool:
        return self.o.rpc_url is None

    @property
    def dsn(self) -> str:
        return chdb_dsn(self.o.data_dir / "clickhouse")

    def start(self) -> None:
        self.o.data_dir.mkdir(parents=True, exist_ok=True)
        self.broker = LocalBroker(self.o.data_dir / "broker", durable=self.o.durable_broker).start()
        if self.simulated:
            self._start_simulator()
        self.client = get_client(self.dsn)
        self._start_sink()
        from pipelines.query.server import start_query_endpoint

        self.endpoint = start_query_endpoint(self.client, port=self.o.query_port, data_dir=self.o.data_dir)

    def _start_simulator(self) -> None:
        from indexer.devchain import SimConfig, generate_ledger
        from indexer.devchain.server import serve_in_thread

        cfg = SimConfig(seed=self.o.seed, days=self.o.days, start_day=self.o.start_day,
                        networks=tuple(self.o.networks))
        self.ledger = generate_ledger(cfg)
        self.sim = serve_in_thread(self.ledger, realtime=self.o.realtime)

    def _sink_config(self) -> SinkConfig:
        # one sink by construction: manual assignment, no group join (sink/consumer.py's module doc), and
        # then confluent-kafka (half the CPU per row): its only crash-suite failures were group stalls
        return SinkConfig.load(bootstrap=self.broker.bootstrap, clickhouse_dsn=self.dsn,
                               database=self.o.database, batch_seconds=0.5, assignment="manual",
                               kafka_client="auto")

    def _start_sink(self) -> None:
        self._sink = Sink(self._sink_config(), client=self.client)
        self._sink_stop.clear()
        self._sink_thread = threading.Thread(target=self._run_sink, name="depinflow-sink", daemon=True)
        self._sink_thread.start()

    def _run_sink(self) -> None:
        self._sink_stats.append(self._sink.run(self._sink_stop))

    def listener_config(self) -> ListenerConfig:
        rpc = self.sim.url if self.simulated else self.o.rpc_url
        ws = self.sim.ws_url if self.simulated else self.o.ws_url
        since = self.o.start_day if self.simulated else self.o.since
        return ListenerConfig.load(
            rpc_url=rpc, ws_url=ws, networks=list(self.o.networks), since=since,
            checkpoint=str(self._checkpoint_path()), bootstrap=self.broker.bootstrap,
            partitions=self.o.partitions, progress=self.o.progress, mode=self.o.mode,
        )

    def _checkpoint_path(self) -> Path:
        """One checkpoint per source: a simulated ledger (seed/days/start) or an RPC endpoint."""
        if self.simulated:
            ident = f"sim-{self.o.seed}-{self.o.days}-{self.o.start_day}-{','.join(self.o.networks)}-{self.o.mode}"
        else:
            ident = f"rpc-{self.o.mode}-" + hashlib.sha256((self.o.rpc_url or "").encode()).hexdigest()[:16]
        return self.o.data_dir / "checkpoints" / f"{ident}.json"

    # ------------------------------------------------------------------ modes
    def run_until_caught_up(self) -> RunSummary:
        """Backfill to the finalized tip, let the sink drain everything, then compare to truth."""
        listener = Listener(self.listener_config())
        summary = RunSummary(source=self.source_text())
        summary.listener = listener.run_until_caught_up(require_final=True)
        self._drain_sink()
        summary.seconds = round(time.monotonic() - self._started, 2)
        summary.sink_rows = self.table_counts()
        if self.simulated:
            self._compare_truth(summary)
        return summary

    def follow(self, stop: threading.Event) -> ListenerSummary:
        """Follow the chain until `stop` is set (Ctrl-C / SIGTERM)."""
        return Listener(self.listener_config()).run(stop)

    def _drain_sink(self, settle: float = 1.5, timeout: float = 600.0) -> None:
        """Wait until the streaming sink has consumed everything the listener published: its `idle`
        flag (nothing buffered, every partition at its high watermark) held for `settle` seconds,
        several fetches after the listener's last acknowledged send."""
        deadline = time.monotonic() + timeout
        steady_since: float | None = None
        while time.monotonic() < deadline:
            if self._sink_thread is not None and not self._sink_thread.is_alive():
                raise RuntimeError("the sink stopped unexpectedly; see the log above")
            if self._sink.idle.is_set():
                steady_since = steady_since or time.monotonic()
                if time.monotonic() - steady_since >= settle:
                    return
            else:
                steady_since = None
            time.sleep(0.1)
        raise TimeoutError(f"the sink did not catch up within {timeout}s")

    def _compare_truth(self, summary: RunSummary) -> None:
        from pipelines.clickhouse.queries import totals

        # address discovery cannot see plain RENDER Transfers between holders; the block walker sees all
        want = self.ledger.truth_lines(discovery="all" if self.o.mode == "blocks" else "addresses")
        got = totals(self.client, self.o.database)
        summary.truth_matches = want == got
        if not summary.truth_matches:
            w = {tuple(sorted(x.items())) for x in want}
            g = {tuple(sorted(x.items())) for x in got}
            summary.truth_diff = [f"missing {dict(x)}" for x in sorted(w - g)][:10] + \
                                 [f"unexpected {dict(x)}" for x in sorted(g - w)][:10]

    def table_counts(self) -> dict[str, int]:
        """Live (deduplicated, not retracted) flow events per class, plus instruction/dead-letter rows."""
        db = self.o.database
        rows = self.client.query(f"SELECT flow_class, count() FROM {db}.flows GROUP BY flow_class").result_rows
        out = {str(k): int(v) for k, v in sorted(rows)}
        for table in ("instructions", "dead_letters"):
            out[table] = int(self.client.query(f"SELECT count() FROM {db}.{table} FINAL").result_rows[0][0])
        return out

    def source_text(self) -> str:
        if self.simulated:
            return (f"built-in chain simulator (offline, no RPC key): seed {self.o.seed}, {self.o.days} day(s) "
                    f"from {self.o.start_day}, {self.sim.url}")
        from indexer.rpc.redact import redact_url

        return f"Solana RPC {redact_url(self.o.rpc_url)}"

    def stop(self) -> None:
        self._sink_stop.set()
        if self._sink_thread:
            self._sink_thread.join(timeout=60)
        if self.endpoint:
            self.endpoint.stop()
        if self.sim:
            self.sim.stop()
        if self.broker:
            self.broker.stop()
