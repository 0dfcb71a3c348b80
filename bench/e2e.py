"""End-to-end benchmark: chain simulator -> listener -> broker -> sink -> ClickHouse, on this machine.

Every stage is its own process, as in production: `depinflow devchain serve` (the RPC node),
`depinflow listen` (subprocess), the tansu broker (child process), and a sink worker (subprocess: the
sink plus the read-only SQL endpoint over its embedded ClickHouse, as `depinflow run` wires them).

1. Backfill: a simulated history served "all finalized". The listener runs `--until-caught-up` from an
   empty checkpoint into fresh topics while the sink (already joined) inserts; the clock stops when the
   last row is in ClickHouse. Printed: transactions/s, flow events/s and rows/s end to end, per-process
   CPU seconds (the cost of each stage) and peak RSS. A first pass into other topics warms the
   simulator's render cache (a real node has its ledger on disk), as bench/listen.py does.
2. Live: the simulator at real cadence (one block every ~400 ms, confirmed one block behind). The bench
   subscribes to confirmed logs itself (the moment each transaction is confirmed) and polls ClickHouse
   through the sink's SQL endpoint every 50 ms (the moment a transaction's first row is queryable).
   Printed: lag p50/p90/p99/max from slot confirmed to row queryable.
3. --profile: the measured backfill pass runs listener and sink under cProfile; own time is summed by
   stage (RPC client, sources, decode, classify, Kafka, sink parse, ClickHouse ...).
4. --long: memory flatness over >= --long-events flow events. The simulator is the streamed chain
   (indexer.devchain.stream: generated while served, old blocks forgotten, paced so that it runs at
   most --long-max-ahead blocks ahead of the listener's fetches); the listener follows it live as a
   user runs it (websocket hints + reconciliation sweeps, confirmed then finalized). RSS of listener,
   broker, sink and simulator is sampled every --long-sample-seconds; printed at 1/10/.../100 % of the
   events with a least-squares slope (MiB per 100k events) and CPU per 1k tx; at the end the ClickHouse
   totals (flows_daily FINAL) must equal the simulator's ground truth. --trace-listener runs the
   listener under tracemalloc with gc type counts (what grows, where).

Run:  .venv/bin/python bench/e2e.py [--days 1] [--tx-per-slot 20] [--live-seconds 60] [--profile]
      .venv/bin/python bench/e2e.py --long [--long-events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.local.broker import LocalBroker  # noqa: E402
from infra.local.ports import free_port, wait_for_port  # noqa: E402

PY = sys.executable
FLOW_TABLES = ("usage_fees", "emissions", "other_flows")


# ------------------------------------------------------------------------------------ processes

def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds utime+stime, peak RSS bytes VmHWM) of a live process, (0, 0) once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0, 0
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return cpu, hwm


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's reaped children and their reaped descendants."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def print_ceiling(cpu: dict[str, float], n_tx: int, wall: float) -> None:
    """The most these per-stage costs allow on this machine's cores, and how close the run came.

    WHY: every stage runs on the same cores, so their CPU per transaction added up bounds the end to end
    rate however well they overlap; the gap between that bound and the measured rate is start-up, the
    sink's last write and the moments one core waits for the other. The share of the ceiling reached is
    by definition the share of the wall time the cores were busy: printed once."""
    cores = len(os.sched_getaffinity(0))
    total = sum(cpu.values())
    per_tx = total / max(1, n_tx)
    ceiling = cores / per_tx if per_tx else 0.0
    busy = total / (cores * wall) if wall else 0.0
    print(f"CPU-bound ceiling: {cores} cores / {1000 * per_tx:.3f} CPU-s per 1k tx (all stages) = {ceiling:,.0f} tx/s; "
          f"this run reached {busy:.0%} of it (the share of the wall time its cores were busy)")


def rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (the listener's fork server and its backfill workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


class Monitor:
    """Samples CPU and peak RSS of named processes every 0.25 s (a process keeps its last sample).

    A name added with `tree=True` also counts the CPU of its descendants (listener workers), each at
    its last sample: a worker's last < 0.25 s before it exits is missed (an undercount)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self.cpu0 = {n: proc_stats(p)[0] for n, p in self.pids.items()}
        self.cpu: dict[str, float] = {n: 0.0 for n in self.pids}
        self.peak: dict[str, int] = {n: 0 for n in self.pids}
        self.trees: dict[str, dict[int, float]] = {}     # name -> descendant pid -> its last CPU sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, name: str, pid: int, tree: bool = False) -> None:
        self.cpu0[name] = proc_stats(pid)[0]
        self.cpu[name], self.peak[name] = 0.0, 0
        self.pids[name] = pid
        if tree:
            self.trees[name] = {}

    def sample(self) -> None:
        for name, pid in list(self.pids.items()):
            cpu, hwm = proc_stats(pid)
            tree = self.trees.get(name)
            if tree is not None:
                for kid in descendants(pid):
                    kid_cpu = proc_stats(kid)[0]
                    if kid_cpu:
                        tree[kid] = kid_cpu
            if hwm:
                self.cpu[name] = cpu - self.cpu0.get(name, 0.0) + sum((tree or {}).values())
                self.peak[name] = max(self.peak[name], hwm)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def cli(*argv: str) -> list[str]:
    return [PY, "-m", "pipelines.cli.main", *argv]


def start_devchain(port: int, *, seed: int, days: int, tx_per_slot: float, start_day: str,
                   realtime: bool, slots_per_day: int | None = None) -> subprocess.Popen:
    argv = ["devchain", "serve", "--seed", str(seed), "--days", str(days), "--tx-per-slot", str(tx_per_slot),
            "--port", str(port), "--start-day", start_day]
    if slots_per_day:
        argv += ["--slots-per-day", str(slots_per_day)]
    if realtime:
        argv.append("--realtime")
    log = tempfile.NamedTemporaryFile(prefix="devchain-", suffix=".log", delete=False)
    proc = subprocess.Popen(cli(*argv), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 7200          # generating a long ledger takes minutes
    while not wait_for_port("127.0.0.1", port, timeout=2):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"devchain did not start (exit {proc.returncode}): "
                               + Path(log.name).read_text()[-3000:])
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def listen_argv(url: str, bootstrap: str, prefix: str, checkpoint: Path, *extra: str) -> list[str]:
    return ["listen", "--rpc-url", url, "--bootstrap", bootstrap, "--topic-prefix", prefix,
            "--checkpoint", str(checkpoint), "--progress", "off", "--log-level", "WARNING", *extra]


# ------------------------------------------------------------------------------------ sink worker

class SinkTrace:
    """--trace-live: when each flow message (key = signature) was fetched, handed to the writer and
    inserted, from inside the sink worker (wall clock, comparable across processes). Measurement
    only: it wraps the sink's consumer poll, its batch write and the writer's inserts in place."""

    def __init__(self, sink) -> None:
        self.sink = sink
        self.fetched: dict[bytes, tuple[int, float, float]] = {}   # key -> (kafka ts ms, poll start, poll end)
        self.written: dict[bytes, tuple[float, float, float]] = {}  # key -> (write start, insert end, write end)
        self.batches: list[dict] = []
        self._events: list | None = None    # events of the write in progress (one at a time, any thread)

    def install(self) -> None:
        sink, flows = self.sink, self.sink.topics.flows
        consumer = sink._consumer
        poll, write = consumer.poll, sink._write
        writer = sink._ensure_writer()
        insert_json, insert_columns, reconcile = writer.insert_json, writer.insert_columns, writer.reconcile

        def traced_poll(max_records, timeout_ms):
            t0 = time.time()
            out = poll(max_records, timeout_ms)
            t1 = time.time()
            for tp, recs in out.items():
                if tp.topic == flows:
                    for r in recs:
                        rec = consumer.record(r)
                        self.fetched.setdefault(rec.key, (rec.timestamp, t0, t1))
            return out

        def timed(name, fn):
            def call(spec, *a, **kw):
                t0 = time.time()
                try:
                    return fn(spec, *a, **kw)
                finally:
                    if self._events is not None:
                        self._events.append((name, spec.name, t0, time.time()))
            return call

        def traced_write(batch):
            keys: dict[str, list] = defaultdict(list)
            for table, by_tp in batch.raw.items():
                for recs in by_tp.values():
                    keys[table].extend(consumer.record(r).key for r in recs)
            for table, srcs in batch.flow_sources.items():
                keys[table].extend(s.key for s in srcs)
            self._events = events = []
            t0 = time.time()
            try:
                return write(batch)
            finally:
                t1 = time.time()
                self._events = None
                ends = {}
                for kind, table, _s, e in events:
                    if kind != "reconcile":
                        ends[table] = max(ends.get(table, 0.0), e)
                for table, ks in keys.items():
                    end = ends.get(table, t1)
                    for k in ks:
                        prev = self.written.get(k)
                        if prev is None or end < prev[1]:
                            self.written[k] = (t0, end, t1)
                self.batches.append({"start": t0, "end": t1, "count": batch.count,
                                     "events": [(k, t, round(s - t0, 4), round(e - s, 4)) for k, t, s, e in events]})

        consumer.poll = traced_poll
        sink._write = traced_write
        writer.insert_json = timed("insert_json", insert_json)
        writer.insert_columns = timed("insert", insert_columns)

        def traced_reconcile(lo, hi, *a, **kw):
            t0 = time.time()
            try:
                return reconcile(lo, hi, *a, **kw)
            finally:
                if self._events is not None:
                    self._events.append(("reconcile", f"{lo}..{hi}", t0, time.time()))

        writer.reconcile = traced_reconcile

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps({
            "fetched": {k.decode(): v for k, v in self.fetched.items() if k},
            "written": {k.decode(): v for k, v in self.written.items() if k},
            "batches": self.batches}))


def sink_worker(ns: argparse.Namespace) -> int:
    """Subprocess: the sink + the read-only SQL endpoint over its embedded ClickHouse (one process,
    because chdb binds a data directory to one process). Writes `ready.json` with the endpoint port;
    on SIGTERM flushes, writes `sink_stats.json` (and the profile) and exits."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    from infra.local.clickhouse import chdb_dsn, get_client
    from pipelines.query.server import start_query_endpoint
    from pipelines.sink import Sink, SinkConfig

    work = Path(ns.dir)
    dsn = chdb_dsn(work / "clickhouse")
    client = get_client(dsn)
    # the embedded `depinflow run` topology: one sink, manual assignment, confluent-kafka (pipelines/embedded.py)
    # DEPINFLOW_SINK_* settings from the environment apply (e.g. DEPINFLOW_SINK_BULK_RATE=0 for an A/B);
    # the bench's own settings go on top
    sink = Sink(SinkConfig.load(bootstrap=ns.bootstrap, clickhouse_dsn=dsn, topic_prefix=ns.prefix,
                                group_id="bench-sink", batch_seconds=ns.batch_seconds, batch_rows=ns.batch_rows,
                                assignment="manual", kafka_client="auto", database="depinflow"),
                client=client)
    sink.start()
    trace = SinkTrace(sink) if ns.trace else None
    if trace:
        trace.install()
    endpoint = start_query_endpoint(client, port=0)
    stop_event = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    (work / "ready.json").write_text(json.dumps({"port": endpoint.port}))
    profiler = cProfile.Profile() if ns.profile else None
    if profiler:
        profiler.enable()

    def progress() -> None:   # what the bench waits on: messages consumed and rows written, committed
        while not stop_event.wait(0.2):
            st = sink.stats
            tmp = work / "progress.tmp"
            tmp.write_text(json.dumps({"messages": st.messages, "batches": st.batches, "commits": st.commits,
                                       "rows": sum(st.rows.values()), "hole_refetches": st.hole_refetches,
                                       "offsets_skipped": st.offsets_skipped}))
            tmp.replace(work / "progress.json")

    threading.Thread(target=progress, daemon=True).start()
    stats = sink.run(stop_event)
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(work / "sink.prof"))
    if trace:
        trace.dump(work / "trace.json")
    (work / "sink_stats.json").write_text(json.dumps({
        "messages": stats.messages, "batches": stats.batches, "rows": dict(stats.rows),
        "dead_letters": stats.dead_letters, **{k: round(getattr(stats, k, 0.0), 2) for k in (
            "poll_seconds", "parse_seconds", "write_seconds", "commit_seconds")}}))
    endpoint.stop()
    return 0


_SINKS: list[SinkProcess] = []   # every sink worker started, so that a failed run ends them too (kill_sinks)


def kill_sinks() -> None:
    """SIGKILL every sink worker still running. WHY: a run that fails between starting a sink and stopping it
    left the worker running for an hour, retrying the gone broker and taking CPU from the runs after it."""
    for sink in _SINKS:
        if sink.proc.poll() is None:
            sink.proc.kill()
            sink.proc.wait()


class SinkProcess:
    def __init__(self, work: Path, bootstrap: str, prefix: str, *, batch_seconds: float, batch_rows: int,
                 profile: bool, trace: bool = False) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        argv = [PY, str(Path(__file__).resolve()), "_sink-worker", "--dir", str(work), "--bootstrap", bootstrap,
                "--prefix", prefix, "--batch-seconds", str(batch_seconds), "--batch-rows", str(batch_rows)]
        if profile:
            argv.append("--profile")
        if trace:
            argv.append("--trace")
        self.log = open(work / "sink.log", "wb")
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        _SINKS.append(self)
        deadline = time.monotonic() + 120
        while not (work / "ready.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sink worker did not start: " + (work / "sink.log").read_text()[-2000:])
            time.sleep(0.1)
        port = json.loads((work / "ready.json").read_text())["port"]
        import clickhouse_connect

        self.client = clickhouse_connect.get_client(host="127.0.0.1", port=port)

    def q(self, sql: str) -> list[tuple]:
        return self.client.query(sql).result_rows

    def progress(self) -> dict:
        try:
            return json.loads((self.work / "progress.json").read_text())
        except (OSError, ValueError):
            return {"messages": 0, "batches": 0, "commits": 0, "rows": 0}

    def wait_consumed(self, messages: int, poll: float = 0.05, stall_seconds: float = 120.0) -> dict:
        """Until the sink has written (and committed) a row for each of `messages` messages: every
        message of these topics becomes exactly one row write (duplicates included, merged later).
        A sink that writes nothing for `stall_seconds` short of the count fails the run (it once sat
        idle one row short for 20 minutes: a broker fetch had skipped an offset, pipelines/sink/gaps.py)."""
        last, since = -1, time.monotonic()
        while (p := self.progress())["rows"] < messages:
            if p["rows"] != last:
                last, since = p["rows"], time.monotonic()
            elif time.monotonic() - since > stall_seconds:
                raise RuntimeError(f"sink stalled at {p['rows']} of {messages} rows for {stall_seconds:.0f} s: {p}")
            time.sleep(poll)
        return p

    def rows(self) -> int:
        """Rows inserted so far (every version; merges may later collapse duplicates)."""
        sql = " + ".join(f"(SELECT count() FROM depinflow.{t})" for t in (*FLOW_TABLES, "instructions",
                                                                           "dead_letters"))
        return int(self.q(f"SELECT {sql}")[0][0])

    def stop(self) -> dict:
        stop(self.proc, signal.SIGTERM, timeout=120)
        self.log.close()
        path = self.work / "sink_stats.json"
        return json.loads(path.read_text()) if path.exists() else {}


# ------------------------------------------------------------------------------------ profile

LISTENER_STAGES = (("indexer/rpc", "RPC client"), ("indexer/sources", "sources (backfill/live)"),
                   ("indexer/decode", "decode"), ("indexer/networks", "classify"),
                   ("indexer/checkpoint", "checkpoint"), ("pipelines/listen", "listener (messages, publish)"),
                   ("pipelines/kafka", "Kafka messages"), ("confluent_kafka", "Kafka producer"),
                   ("kafka/", "Kafka producer"), ("aiohttp", "HTTP (aiohttp)"), ("yarl", "HTTP (aiohttp)"),
                   ("multidict", "HTTP (aiohttp)"), ("asyncio", "event loop"), ("selectors", "event loop"),
                   ("structlog", "logging"), ("logging", "logging"))
SINK_STAGES = (("pipelines/sink/rows", "sink parse"), ("pipelines/sink/columns", "sink parse"),
               ("pipelines/sink", "sink batching/commit"), ("pipelines/clickhouse", "sink batching/commit"),
               ("kafka/", "Kafka consumer"), ("clickhouse_connect", "ClickHouse client"),
               ("chdb", "ClickHouse engine (chdb)"), ("infra/local", "ClickHouse engine (chdb)"),
               ("structlog", "logging"), ("logging", "logging"))


_WAITS = ("poll", "select", "epoll", "sleep", "acquire", "wait")


def profile_by_stage(path: Path, stages) -> list[tuple[str, float, float]]:
    """(stage, own seconds, share) from a cProfile dump; C functions count where they are called from."""
    st = pstats.Stats(str(path))
    by: dict[str, float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, tt, _ct, callers) in st.stats.items():
        if filename == "~":   # a builtin / C method: charged to its biggest caller's stage ...
            caller = max(callers.items(), key=lambda kv: kv[1][2])[0] if callers else ("~", 0, name)
            filename = caller[0]
            waiting = any(w in name for w in _WAITS)
            # ... except waits, which are idle time unless the wait is for the embedded ClickHouse
            # (chdb runs a query on its own thread while the caller waits for the result)
            if waiting and not any(k in filename for k in ("chdb", "clickhouse_connect", "infra/local")):
                by["idle (waiting in select/poll/locks)"] += tt
                continue
        stage = next((label for key, label in stages if key in filename), "other (stdlib, orjson, solders ...)")
        by[stage] += tt
    total = sum(by.values()) or 1.0
    return sorted(((k, v, v / total) for k, v in by.items()), key=lambda r: -r[1])


def print_profile(title: str, rows) -> None:
    print(f"{title}:")
    for stage, seconds, share in rows:
        print(f"    {stage:<34}{seconds:>8.2f} s {share:>6.1%}")


# ------------------------------------------------------------------------------------ phases

def backfill(args, data: Path, broker: LocalBroker) -> None:
    port = free_port()
    t = time.perf_counter()
    sim = start_devchain(port, seed=args.seed, days=args.days, tx_per_slot=args.tx_per_slot,
                         start_day="2026-03-28", realtime=False)
    print(f"simulator: seed {args.seed}, {args.days} day(s), {args.tx_per_slot} tx/slot, generated and serving "
          f"in {time.perf_counter() - t:.0f} s")
    url = f"http://127.0.0.1:{port}"
    try:
        if not args.no_warm:
            t = time.perf_counter()
            subprocess.run(cli(*listen_argv(url, broker.bootstrap, "warm", data / "warm.json", "--until-caught-up",
                                            "--no-websocket")), cwd=ROOT, check=True, capture_output=True)
            print(f"warm-up pass (simulator render cache, other topics): {time.perf_counter() - t:.1f} s")
        sink = SinkProcess(data / "sink", broker.bootstrap, "bench", batch_seconds=args.batch_seconds,
                           batch_rows=args.batch_rows, profile=args.profile)
        profile = ["-m", "cProfile", "-o", str(data / "listener.prof")] if args.profile else []
        with Monitor({"simulator": sim.pid, "broker": broker.proc.pid, "sink": sink.proc.pid}) as mon:
            t0 = time.perf_counter()
            reaped0 = children_cpu()
            listener = subprocess.Popen([PY, *profile, "-m", "pipelines.cli.main",
                                         *listen_argv(url, broker.bootstrap, "bench", data / "bench.json",
                                                      "--until-caught-up", "--no-websocket",
                                                      "--workers", str(args.listener_workers))],
                                        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            mon.add("listener", listener.pid, tree=True)
            out, err = listener.communicate()
            t_listener = time.perf_counter() - t0
            # exact: the listener and its workers, reaped (the 0.25 s samples miss each one's last moments)
            mon.cpu["listener"] = max(mon.cpu["listener"], children_cpu() - reaped0)
            if listener.returncode != 0:
                raise RuntimeError(f"listener failed: {err[-3000:]}")
            summary = json.loads(out.strip().splitlines()[-1])
            expected = summary["events"] + summary["instructions"] + summary["dead_letters"]
            sink.wait_consumed(expected + summary["statuses"])
            wall = time.perf_counter() - t0
        sink_stats = sink.stop()
    finally:
        stop(sim)
    n_tx, n_ev = summary["transactions"], summary["events"]
    print(f"backfill: {n_tx} transactions -> {n_ev} flow events, {summary['instructions']} instruction records, "
          f"{summary['dead_letters']} dead letters = {expected} rows; listener done after {t_listener:.2f} s, "
          f"last row in ClickHouse after {wall:.2f} s")
    print(f"BACKFILL END TO END: {n_tx / wall:,.0f} tx/s, {n_ev / wall:,.0f} events/s, {expected / wall:,.0f} rows/s"
          f"{' (under cProfile: slower than normal)' if args.profile else ''}")
    print("cost per stage (CPU seconds of each process during the measured pass; per 1,000 tx):")
    for name in ("simulator", "listener", "broker", "sink"):
        print(f"    {name:<10}{mon.cpu[name]:>8.2f} s  {1000 * mon.cpu[name] / max(1, n_tx):>7.3f} s/1k tx   "
              f"peak RSS {mon.peak[name] / 2**20:>7.0f} MiB")
    print_ceiling(mon.cpu, n_tx, wall)
    if sink_stats:
        print(f"sink timers: {sink_stats}")
    if args.profile:
        print_profile("listener profile (own time by stage, main thread)",
                      profile_by_stage(data / "listener.prof", LISTENER_STAGES))
        print_profile("sink profile (own time by stage, main thread)",
                      profile_by_stage(data / "sink" / "sink.prof", SINK_STAGES))


class ConfirmedClock:
    """Records when each transaction is confirmed: a logsSubscribe("all", confirmed) of our own."""

    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url
        self.at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        import websockets

        async with websockets.connect(self.ws_url, max_size=2**24) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "logsSubscribe",
                                      "params": ["all", {"commitment": "confirmed"}]}))
            while not self._stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now = time.time()
                msg = json.loads(raw)
                value = (msg.get("params") or {}).get("result", {}).get("value")
                if value and value.get("signature"):
                    self.at.setdefault(value["signature"], now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


class RowPoller:
    """Polls ClickHouse (through the sink's SQL endpoint) for flow rows of recent slots and records when
    each transaction's first row became visible. Why not `inserted_at`: once the finalized version of a
    row is written, background merges drop the confirmed one, and its insert time with it."""

    def __init__(self, sink: SinkProcess, interval: float) -> None:
        self.sink = sink
        self.interval = interval
        self.first_seen: dict[str, float] = {}
        self.seen_by_query_from: dict[str, float] = {}   # start of the query that first saw it
        self.query_seconds: list[float] = []
        self.starts: list[float] = []
        self.queries = 0
        self._floor = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        union = " UNION ALL ".join(f"SELECT signature, slot FROM depinflow.{t} WHERE slot >= {{floor:UInt64}}"
                                   for t in FLOW_TABLES)
        while not self._stop.wait(self.interval):
            started = time.time()
            rows = self.sink.client.query(f"SELECT signature, max(slot) FROM ({union}) GROUP BY signature",
                                          parameters={"floor": self._floor}).result_rows
            now = time.time()
            self.queries += 1
            self.query_seconds.append(now - started)
            self.starts.append(started)
            for sig, slot in rows:
                if sig not in self.first_seen:
                    self.first_seen[sig] = now
                    self.seen_by_query_from[sig] = started
                self._floor = max(self._floor, int(slot) - 200)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def live(args, data: Path, broker: LocalBroker) -> None:
    port = free_port()
    sim = start_devchain(port, seed=args.seed + 1, days=1, tx_per_slot=args.live_tx_per_slot,
                         start_day="2026-04-02", realtime=True)
    url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    sink = SinkProcess(data / "sink-live", broker.bootstrap, "live", batch_seconds=args.live_batch_seconds,
                       batch_rows=args.batch_rows, profile=False, trace=args.trace_live)
    clock = ConfirmedClock(ws_url)
    poller = RowPoller(sink, args.live_poll_seconds)
    try:
        with Monitor({"simulator": sim.pid, "broker": broker.proc.pid, "sink": sink.proc.pid}) as mon:
            listener = subprocess.Popen(cli(*listen_argv(url, broker.bootstrap, "live", data / "live.json")),
                                        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            mon.add("listener", listener.pid)
            measured_from = time.time() + args.live_warmup
            time.sleep(args.live_warmup + args.live_seconds)
            stop(listener, signal.SIGTERM)
            time.sleep(2 * args.live_batch_seconds + 1)
        poller.close()
        clock.close()
        sink.stop()
    finally:
        stop(sim)
        poller.close()
        clock.close()
    lags = sorted(seen - clock.at[sig] for sig, seen in poller.first_seen.items()
                  if clock.at.get(sig, 0) >= measured_from)
    if not lags:
        print("live: no transaction both confirmed and inserted (too short?)")
        return

    def q(p: float) -> float:
        return 1000 * lags[min(len(lags) - 1, int(p * len(lags)))]

    print(f"live: {args.live_seconds:.0f} s at real cadence (~400 ms/block, {args.live_tx_per_slot} tx/slot) after "
          f"{args.live_warmup:.0f} s of listener start-up, {len(lags)} transactions with flow rows; sink "
          f"batch_seconds {args.live_batch_seconds}, listener defaults (websocket hints, 1 s sweeps)")
    print(f"LIVE LAG slot confirmed -> row queryable: p50 {q(0.5):.0f} ms, p90 {q(0.9):.0f} ms, "
          f"p99 {q(0.99):.0f} ms, max {1000 * lags[-1]:.0f} ms (rows polled every {args.live_poll_seconds * 1000:.0f} ms"
          f" through the SQL endpoint: {poller.queries} queries; up to one interval of the lag is the polling)")
    for name in ("simulator", "listener", "broker", "sink"):
        print(f"    {name:<10} CPU {mon.cpu[name]:>7.2f} s   peak RSS {mon.peak[name] / 2**20:>7.0f} MiB")
    qs = sorted(poller.query_seconds)
    if qs:
        print(f"    poller query: p50 {1000 * qs[len(qs) // 2]:.0f} ms, p99 {1000 * qs[int(0.99 * len(qs))]:.0f} ms, "
              f"max {1000 * qs[-1]:.0f} ms")
    trace = data / "sink-live" / "trace.json"
    if args.trace_live and trace.exists():
        print_live_stages(json.loads(trace.read_text()), clock.at, poller, measured_from)


def print_live_stages(trace: dict, confirmed: dict[str, float], poller: RowPoller, measured_from: float) -> None:
    """--trace-live: per transaction, where the time between slot confirmed and row queryable went."""
    import bisect

    stages: dict[str, list[float]] = defaultdict(list)
    missed = []   # queries that started after the row's insert returned and did not see it
    for sig, seen in poller.first_seen.items():
        at = confirmed.get(sig, 0)
        f, w = trace["fetched"].get(sig), trace["written"].get(sig)
        if at < measured_from or f is None or w is None:
            continue
        kafka_ts, poll_start, fetched = f[0] / 1000, f[1], f[2]
        write_start, insert_end, _write_end = w
        missed.append(bisect.bisect_left(poller.starts, poller.seen_by_query_from[sig])
                      - bisect.bisect_right(poller.starts, insert_end))
        for name, value in (("confirmed -> produced (Kafka timestamp)", kafka_ts - at),
                            ("produced -> fetched (consume returned)", fetched - kafka_ts),
                            ("  of which consume() called before produce", fetched - max(poll_start, kafka_ts)),
                            ("fetched -> write started", write_start - fetched),
                            ("write started -> its flow insert returned", insert_end - write_start),
                            ("insert returned -> seen by the poller", seen - insert_end),
                            ("  seen: poller query start -> query end", seen - poller.seen_by_query_from[sig]),
                            ("total confirmed -> seen", seen - at)):
            stages[name].append(value)
    if not stages:
        print("    (no traced transactions)")
        return
    print(f"  per-transaction stages over {len(stages['total confirmed -> seen'])} transactions (ms):")
    for name, values in stages.items():
        v = sorted(values)
        p50, p90, p99 = (1000 * v[min(len(v) - 1, int(p * len(v)))] for p in (0.5, 0.9, 0.99))
        print(f"    {name:<45} p50 {p50:>6.0f}  p90 {p90:>6.0f}  p99 {p99:>6.0f}  max {1000 * v[-1]:>6.0f}")
    missed.sort()
    print(f"    poller queries started after the insert returned that missed the row: p50 {missed[len(missed) // 2]}, "
          f"p99 {missed[int(0.99 * len(missed))]}, max {missed[-1]}")
    batches = trace["batches"]
    ev: dict[str, list[float]] = defaultdict(list)
    for b in batches:
        for kind, table, _start, dur in b["events"]:
            ev[f"{kind} {table if kind != 'reconcile' else ''}".strip()].append(dur)
        ev["whole write"].append(b["end"] - b["start"])
    print(f"  sink writes: {len(batches)} batches, mean {sum(b['count'] for b in batches) / max(1, len(batches)):.0f}"
          " messages each; durations (ms):")
    for name, values in sorted(ev.items()):
        v = sorted(values)
        print(f"    {name:<45} n {len(v):>5}  p50 {1000 * v[len(v) // 2]:>6.0f}  p99 "
              f"{1000 * v[min(len(v) - 1, int(0.99 * len(v)))]:>6.0f}  max {1000 * v[-1]:>6.0f}")


# ------------------------------------------------------------------------------------ long run

def sim_worker(ns: argparse.Namespace) -> int:
    """Subprocess: the streamed chain (indexer.devchain.stream) - generated while served, old blocks
    forgotten, paced by the listener's fetches - until SIGTERM."""
    from indexer.devchain.ledger import SimConfig
    from indexer.devchain.stream import serve_stream

    signal.signal(signal.SIGTERM, signal.default_int_handler)     # -> KeyboardInterrupt: a clean stop
    serve_stream(SimConfig(seed=ns.seed, days=ns.days, tx_per_slot=ns.tx_per_slot, slots_per_day=ns.slots_per_day,
                           start_day=ns.start_day),
                 port=ns.port, max_events=ns.max_events, count="addresses", block_interval=ns.block_interval,
                 max_ahead=ns.max_ahead or None, retention_blocks=ns.retention_blocks, keep_ids=bool(ns.keep_ids))
    return 0


def traced_worker(argv: list[str]) -> int:
    """Subprocess: `depinflow <argv>` with tracemalloc and gc type counts written to $TRACE_OUT every
    $TRACE_SECONDS (what grows, by allocation site and by object type; no objgraph needed).

    $TRACE_FRAMES=0: no tracemalloc (it costs ~8x the listener's CPU), only gc type counts, RSS and the
    sizes of the known long-lived structures. $TRACE_START_SECONDS: start tracemalloc only then (after the
    warm-up; only allocations from then on are traced). $TRACE_CACHE_MAX: shrink the decoder's bounded
    memo caches (diagnosis: they saturate early, so what still grows afterwards is unbounded)."""
    import gc
    import tracemalloc
    from collections import Counter

    out = Path(os.environ["TRACE_OUT"])
    every = float(os.environ.get("TRACE_SECONDS", "60"))
    frames = int(os.environ.get("TRACE_FRAMES", "8"))
    start_at = float(os.environ.get("TRACE_START_SECONDS", "0"))
    if os.environ.get("TRACE_CACHE_MAX"):
        from indexer.decode import txparse

        txparse._CACHE_MAX = int(os.environ["TRACE_CACHE_MAX"])
    if frames and not start_at:
        tracemalloc.start(frames)

    def counts() -> Counter:
        return Counter(type(o).__name__ for o in gc.get_objects())

    def loop() -> None:
        time.sleep(max(every, start_at))
        if frames and start_at:
            tracemalloc.start(frames)
        base_snap = tracemalloc.take_snapshot() if frames else None
        base_counts = counts()
        n = 0
        while True:
            time.sleep(every)
            n += 1
            now = counts()
            lines = [f"=== sample {n} at +{max(every, start_at) + n * every:.0f} s: RSS {rss(os.getpid()) / 2**20:.1f} MiB"]
            if frames:
                snap = tracemalloc.take_snapshot()
                lines[0] += f", traced {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB"
                for st in snap.compare_to(base_snap, "traceback")[:12]:
                    lines.append(f"{st.size_diff / 2**20:+8.2f} MiB {st.count_diff:+9d} blocks")
                    lines.extend("      " + str(fr) for fr in st.traceback.format()[-6:])
            for _ in range(5):   # the listener's loop mutates these structures meanwhile (another thread)
                try:
                    lines.extend(_live_state())
                    break
                except RuntimeError:
                    time.sleep(0.01)
            grown = sorted(((now[k] - base_counts.get(k, 0), k) for k in now), reverse=True)[:15]
            lines.append("object types grown: " + ", ".join(f"{k} {d:+d}" for d, k in grown if d))
            with out.open("a") as f:
                f.write("\n".join(lines) + "\n")

    threading.Thread(target=loop, daemon=True).start()
    from pipelines.cli.main import main as cli_main

    return cli_main(argv)


def _live_state() -> list[str]:
    """Sizes of the listener's live-tail structures (found through gc: no hook in the listener)."""
    import gc

    out = []
    for o in gc.get_objects():
        if type(o).__name__ != "LiveTail":
            continue
        queues = {a: q for a, q in list(o.queues.items()) if q}
        line = (f"live tail: jobs {len(o.jobs)} (done {sum(j.done for j in list(o.jobs.values()))}), queued "
                f"{sum(len(q) for q in o.queues.values())} in {len(queues)} queues, finalizer pending "
                f"{len(o.finalizer.pending)}, finalized slot {o.finalizer.finalized_slot}")
        out.append(line)
        lag = getattr(getattr(o, "stats", None), "live_ack_lag", ())
        log_ = o.finalizer.log
        out.append(f"   cursors {len(o.cursors)}, queued sets {sum(len(x) for x in o.queued.values())}, "
                   f"live_ack_lag {len(lag)}, checkpoint pending {len(log_.cp.pending) if log_ else '-'}")
        for a, q in sorted(queues.items(), key=lambda kv: -len(kv[1]))[:3]:
            h = q[0]
            out.append(f"   queue {a[:8]} len {len(q)} head slot {h.slot} status {h.status} acked {h.acked} "
                       f"done {h.done} outcome {h.outcome!r} task {h.task}")
    from indexer.decode import txparse

    out.append("decoder caches: " + ", ".join(f"{n} {len(getattr(txparse, n))}" for n in
                                              ("_KEY_STR", "_B58_DATA", "_PUBKEYS_SEEN", "_CHILD_PATHS", "_FLAGS")))
    return out


def _rpc(url: str, method: str, *params):
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())["result"]


def fit_slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope dy/dx (0 with fewer than two distinct x)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if not sxx:
        return 0.0
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx


LONG_PROCS = ("listener", "broker", "sink", "simulator")
FLOW_TABLES = ("usage_fees", "emissions", "other_flows")


def diagnose_mismatch(url: str, sink, diff: list, data: Path, bootstrap: str, prefix: str, have_ids: bool) -> None:
    """Where the events of the mismatched lines got lost (issue 9): FINAL sums vs flows_daily (the
    rollup), then per missing/extra event id its raw row versions, its transaction's status records,
    whether its flow message is on the topic, and what the listener logged about the signature."""
    db = "depinflow"
    print("DIAGNOSIS of the mismatched lines:")
    print(f"  dead letters by (stage, reason): {sink.q(f'SELECT stage, reason, count() FROM {db}.dead_letters GROUP BY 1, 2')}")
    for key, want, have in diff:
        net, day, cls, sub, mint = key
        where = (f"network = '{net}' AND day = '{day}' AND flow_class = '{cls}' AND subtype = '{sub}' "
                 f"AND mint = '{mint}'")
        final = sink.q(f"SELECT count(), toString(sum(amount_raw)) FROM {db}.flows WHERE {where}")[0]
        print(f"  line {key}: truth {want}, flows_daily {have}, FINAL over flows {final[1]} ({final[0]} events)"
              + ("  <- the rollup differs from FINAL" if str(have) != str(final[1]) else ""))
        if not have_ids:
            print("    (event ids not kept: rerun with --long-event-ids 1)")
            continue
        truth_ids = {x["event_id"]: x for x in _rpc(url, "devchain_truth_ids", net, day, cls, sub, mint)}
        raw: dict[str, list] = defaultdict(list)
        for t in FLOW_TABLES:
            for r in sink.q(f"SELECT event_id, slot, commitment, version, is_deleted, toString(inserted_at), "
                            f"signature FROM {db}.{t} WHERE {where}"):
                raw[r[0]].append((t, *r[1:]))
        live = {r[0] for r in sink.q(f"SELECT event_id FROM {db}.flows WHERE {where}")}
        missing = sorted(set(truth_ids) - live)
        extra = sorted(live - set(truth_ids))
        print(f"    {len(truth_ids)} events in the truth, {len(live)} in FINAL; missing {len(missing)}, extra {len(extra)}")
        for eid in missing[:10] + extra[:10]:
            info = truth_ids.get(eid) or {}
            sig = info.get("signature") or (raw[eid][0][6] if raw.get(eid) else eid.split(":")[0])
            print(f"    {'MISSING' if eid in truth_ids else 'EXTRA'} {eid} (slot {info.get('slot')}, "
                  f"amount {info.get('amount_raw')})")
            print(f"      raw rows (table, slot, commitment, version, is_deleted, inserted_at): "
                  f"{[r[:6] for r in raw.get(eid, [])] or 'none'}")
            st = sink.q(f"SELECT slot, status, version, event_ids, toString(inserted_at) FROM {db}.commitment_status "
                        f"WHERE signature = '{sig}'")
            print(f"      commitment_status: {st or 'none'}")
            dl = sink.q(f"SELECT stage, reason, substring(detail, 1, 200), topic FROM {db}.dead_letters "
                        f"WHERE signature = '{sig}'")
            print(f"      dead_letters: {dl or 'none'}")
            log_lines = [ln.strip()[:300] for ln in (data / "listener.log").read_text(errors="replace").splitlines()
                         if sig in ln]
            print(f"      listener log lines naming it: {log_lines[:5] or 'none'}")
            print(f"      messages keyed by it on the topics: {_topic_hits(bootstrap, prefix, sig)}")


def _topic_hits(bootstrap: str, prefix: str, signature: str) -> dict:
    """Messages keyed by `signature` on the flows and status topics (a full scan: diagnostics only)."""
    from pipelines.kafka.topics import Topics

    topics = Topics(prefix)
    out = {}
    for name in (topics.flows, topics.status):
        from kafka import KafkaConsumer

        c = KafkaConsumer(name, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                          consumer_timeout_ms=5000, group_id=None)
        key = signature.encode()
        out[name] = [json.loads(m.value).get("commitment") or json.loads(m.value).get("status")
                     for m in c if m.key == key]
        c.close()
    return out


def long_run(args, data: Path, broker: LocalBroker) -> None:
    """Memory flatness: the listener follows a streamed chain live (fast cadence, paced by its own
    fetches) until >= --long-events flow events; RSS of every process sampled all along; at the end
    the ClickHouse totals must equal the simulator's ground truth."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sim_log = open(data / "sim.log", "wb")
    sim = subprocess.Popen([PY, str(Path(__file__).resolve()), "_sim-worker", "--port", str(port), "--seed",
                            str(args.seed), "--tx-per-slot", str(args.tx_per_slot), "--slots-per-day",
                            str(args.long_slots_per_day), "--days", "3650", "--start-day", "2026-03-28",
                            "--max-events", str(args.long_events), "--block-interval", str(args.long_block_interval),
                            "--max-ahead", str(args.long_max_ahead), "--retention-blocks",
                            str(args.long_retention_blocks), "--keep-ids", str(int(args.long_event_ids))], cwd=ROOT, stdout=sim_log, stderr=subprocess.STDOUT)
    if not wait_for_port("127.0.0.1", port, timeout=120):
        raise RuntimeError("streamed simulator did not start: " + (data / "sim.log").read_text()[-3000:])
    sink = SinkProcess(data / "sink-long", broker.bootstrap, "long", batch_seconds=1.0,
                       batch_rows=args.batch_rows, profile=False)
    largv = listen_argv(url, broker.bootstrap, "long", data / "long.json")
    if args.trace_listener:
        env = dict(os.environ, TRACE_OUT=str(data / "listener.trace"), TRACE_SECONDS=str(args.trace_seconds))
        listener = subprocess.Popen([PY, str(Path(__file__).resolve()), "_traced", *largv], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL, stderr=open(data / "listener.log", "wb"))
    else:
        listener = subprocess.Popen(cli(*largv), cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=open(data / "listener.log", "wb"))
    pids = {"listener": listener.pid, "broker": broker.proc.pid, "sink": sink.proc.pid, "simulator": sim.pid}
    if broker.s3 is not None and broker.s3.proc is not None:
        pids["s3 (moto)"] = broker.s3.proc.pid
    cpu0 = {n: proc_stats(p)[0] for n, p in pids.items()}
    pacer_stop = threading.Event()

    def pacer() -> None:   # the listener's durable live position paces the chain (see devchain_pace)
        while not pacer_stop.wait(0.5):
            try:
                live_slot = json.loads((data / "long.json").read_text()).get("live_slot")
                if live_slot:
                    _rpc(url, "devchain_pace", live_slot)
            except (OSError, ValueError):
                continue

    if args.long_pace:
        threading.Thread(target=pacer, daemon=True).start()
    samples: list[dict] = []
    t0 = time.perf_counter()
    print(f"long: streamed chain seed {args.seed}, {args.tx_per_slot} tx/slot, until {args.long_events:,} "
          f"discoverable flow events; listener live (websocket hints + sweeps), retention "
          f"{args.long_retention_blocks} blocks, pacing {args.long_max_ahead or 'off'} blocks ahead of fetches"
          f"{' and the listener checkpoint' if args.long_pace else ''}",
          flush=True)
    truth = None
    verdict = "not checked"
    try:
        next_print = 0.0
        stopped = ""
        while True:
            time.sleep(args.long_sample_seconds)
            if listener.poll() is not None:
                raise RuntimeError("listener exited: " + (data / "listener.log").read_text()[-3000:])
            st = _rpc(url, "devchain_stream")
            row = {"t": time.perf_counter() - t0, "events": st["events_addresses"], "tx": st["transactions"],
                   "rows": sink.progress()["rows"], "ahead": st["ahead_blocks"], "unresolved": st["unpaced_blocks"] or 0,
                   **{n: rss(p) for n, p in pids.items()}}
            samples.append(row)
            if row["t"] >= next_print:
                next_print += 60
                print(f"  +{row['t']:5.0f} s  {row['events']:>9,} events {row['tx']:>9,} tx  rows {row['rows']:>10,}"
                      f"  ahead {row['ahead']:>3}/{row['unresolved']:>3}  " + "  ".join(f"{n} {row[n] / 2**20:.0f}" for n in pids)
                      + " MiB", flush=True)
            if st["finished"]:
                break
            big = [n for n in ("listener", "sink", "broker") if row[n] > args.long_rss_cap_mib * 2**20]
            if not stopped and (row["t"] > args.long_max_seconds or big):
                stopped = f"time box {args.long_max_seconds:.0f} s" if not big else f"RSS cap hit by {big}"
                print(f"  stopping the chain early: {stopped}", flush=True)
                _rpc(url, "devchain_stop")
        chain_done = time.perf_counter() - t0
        truth = _rpc(url, "devchain_truth", "addresses")
        from pipelines.clickhouse.queries import totals

        deadline = time.perf_counter() + args.long_settle_seconds
        got = None
        while time.perf_counter() < deadline:
            time.sleep(10)
            samples.append({"t": time.perf_counter() - t0, "events": samples[-1]["events"], "tx": samples[-1]["tx"],
                            "rows": sink.progress()["rows"], "ahead": 0, "settle": True,
                            **{n: rss(p) for n, p in pids.items()}})
            got = totals(sink.client, "depinflow")
            if got == truth:
                break
        settled = time.perf_counter() - t0
        if got == truth:
            verdict = f"EXACT ({len(truth)} lines)"
        else:
            want = {tuple(x[k] for k in ("network", "day", "flow_class", "subtype", "mint")): x["amount_raw"]
                    for x in truth}
            have = {tuple(x[k] for k in ("network", "day", "flow_class", "subtype", "mint")): x["amount_raw"]
                    for x in got or []}
            diff = [(k, want.get(k), have.get(k)) for k in sorted(set(want) | set(have)) if want.get(k) != have.get(k)]
            verdict = f"MISMATCH in {len(diff)} of {len(want)} lines, e.g. {diff[:3]}"
            diagnose_mismatch(url, sink, diff, data, broker.bootstrap, "long", args.long_event_ids)
        cpu = {n: proc_stats(p)[0] - cpu0[n] for n, p in pids.items()}
    finally:
        pacer_stop.set()
        stop(listener, signal.SIGTERM)
        sink.stop()
        stop(sim, signal.SIGTERM)
        sim_log.close()
    n_ev, n_tx = samples[-1]["events"], samples[-1]["tx"]
    print(f"long: {n_tx:,} transactions, {n_ev:,} discoverable flow events (truth: {len(truth or [])} lines); chain "
          f"finished after {chain_done:.0f} s ({n_tx / chain_done:,.0f} tx/s, {n_ev / chain_done:,.0f} events/s), "
          f"ClickHouse settled after {settled:.0f} s; sink rows written {samples[-1]['rows']:,}")
    if stopped:
        print(f"  (chain ended early: {stopped}; the truth is what was produced)")
    print(f"GROUND TRUTH vs ClickHouse totals (flows_daily FINAL): {verdict}")
    names = list(pids)
    print("  progress    events      " + "".join(f"{n:>13}" for n in names) + "   (RSS MiB)")
    for pct in (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100):
        target = n_ev * pct / 100
        s = next((x for x in samples if x["events"] >= target), samples[-1])
        print(f"  {pct:>5}%  {s['events']:>10,}     " + "".join(f"{s[n] / 2**20:>13.0f}" for n in names))
    print("  slope (least squares over samples from 10% to the end of the chain, MiB per 100k events); CPU:")
    chain = [s for s in samples if s["events"] >= 0.1 * n_ev and not s.get("settle")] or samples
    for n in names:
        pts = [(s["events"], s[n] / 2**20) for s in chain if s[n]]
        slope = fit_slope(pts) * 100_000
        first, last = (pts[0][1], pts[-1][1]) if pts else (0, 0)
        print(f"    {n:<11} {slope:+7.2f} MiB/100k events   ({first:.0f} -> {last:.0f} MiB)   CPU {cpu[n]:8.1f} s"
              f" = {1000 * cpu[n] / max(1, n_tx):.3f} s per 1k tx")
    print_quarters(samples, names, n_ev)
    out = data.parent / f"e2e-long-{os.getpid()}.json"
    out.write_text(json.dumps({"samples": samples, "cpu": cpu, "verdict": verdict, "args": vars(args)}))
    print(f"  samples: {out}")
    if args.trace_listener and (data / "listener.trace").exists():
        keep = data.parent / f"e2e-long-{os.getpid()}-listener.trace"
        shutil.copy(data / "listener.trace", keep)
        print(f"  listener allocation trace: {keep}")


def quarter_slopes(samples: list[dict], name: str, n_ev: int) -> list[tuple[float, float, float]]:
    """(slope MiB per 100k events, RSS MiB at the quarter's start, at its end) of each quarter of the
    chain's events. WHY quarters: a bounded structure that fills during warm-up (a memo cache, a window
    of lags) gives a positive slope over the whole run; growth per event shows in the LAST quarter."""
    chain = [s for s in samples if not s.get("settle") and s.get(name)]
    out = []
    for q in range(4):
        lo, hi = n_ev * q / 4, n_ev * (q + 1) / 4
        pts = [(s["events"], s[name] / 2**20) for s in chain if lo <= s["events"] <= hi]
        out.append((fit_slope(pts) * 100_000, pts[0][1], pts[-1][1]) if pts else (0.0, 0.0, 0.0))
    return out


def print_quarters(samples: list[dict], names: list[str], n_ev: int) -> None:
    print("  slope per quarter of the events (MiB per 100k events; RSS MiB at its start -> end):")
    for n in names:
        qs = quarter_slopes(samples, n, n_ev)
        print(f"    {n:<11} " + "   ".join(f"Q{i + 1} {sl:+7.2f} ({a:.0f}->{b:.0f})" for i, (sl, a, b) in enumerate(qs)))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_sink-worker":
        ap = argparse.ArgumentParser()
        ap.add_argument("_cmd")
        ap.add_argument("--dir", required=True)
        ap.add_argument("--bootstrap", required=True)
        ap.add_argument("--prefix", required=True)
        ap.add_argument("--batch-seconds", type=float, default=1.0)
        ap.add_argument("--batch-rows", type=int, default=50_000)
        ap.add_argument("--profile", action="store_true")
        ap.add_argument("--trace", action="store_true")
        return sink_worker(ap.parse_args())
    if len(sys.argv) > 1 and sys.argv[1] == "_sim-worker":
        ap = argparse.ArgumentParser()
        ap.add_argument("_cmd")
        for name, typ in (("--port", int), ("--seed", int), ("--tx-per-slot", float), ("--slots-per-day", int),
                          ("--days", int), ("--start-day", str), ("--max-events", int), ("--block-interval", float),
                          ("--max-ahead", int), ("--retention-blocks", int), ("--keep-ids", int)):
            ap.add_argument(name, type=typ, required=True)
        return sim_worker(ap.parse_args())
    if len(sys.argv) > 2 and sys.argv[1] == "_quarters":   # re-analyse a saved samples file
        saved = json.loads(Path(sys.argv[2]).read_text())
        names = [n for n in saved["samples"][-1] if n not in ("t", "events", "tx", "rows", "ahead", "unresolved", "settle")]
        print_quarters(saved["samples"], names, max(s["events"] for s in saved["samples"]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_traced":
        return traced_worker(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--tx-per-slot", type=float, default=20.0)
    ap.add_argument("--batch-seconds", type=float, default=1.0, help="sink flush interval in the backfill")
    ap.add_argument("--batch-rows", type=int, default=50_000)
    ap.add_argument("--live-seconds", type=float, default=60.0)
    ap.add_argument("--live-tx-per-slot", type=float, default=8.0)
    ap.add_argument("--live-poll-seconds", type=float, default=0.05, help="ClickHouse polling interval (live lag)")
    ap.add_argument("--live-warmup", type=float, default=10.0,
                    help="seconds after the listener starts before confirmations count (start-up is not lag)")
    ap.add_argument("--live-batch-seconds", type=float, default=0.1, help="sink flush interval when live")
    ap.add_argument("--trace-live", action="store_true",
                    help="live pass: per-transaction stage times (Kafka produce, sink fetch, write, insert, seen)")
    ap.add_argument("--profile", action="store_true", help="profile listener and sink in the backfill pass")
    ap.add_argument("--no-warm", action="store_true", help="skip the simulator warm-up pass")
    ap.add_argument("--listener-workers", type=int, default=0,
                    help="backfill pass: `depinflow listen --workers N` (its CPU includes the workers)")
    ap.add_argument("--skip-backfill", action="store_true")
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--long", action="store_true", help="memory flatness over --long-events (only that)")
    ap.add_argument("--long-events", type=int, default=1_000_000)
    ap.add_argument("--long-sample-seconds", type=float, default=5.0)
    ap.add_argument("--long-slots-per-day", type=int, default=2400)
    ap.add_argument("--long-block-interval", type=float, default=0.0,
                    help="seconds between blocks of the streamed chain (0: as fast as generated and paced)")
    ap.add_argument("--long-max-ahead", type=int, default=64,
                    help="blocks the chain may run ahead of the newest fetched transaction (0: unpaced)")
    ap.add_argument("--long-retention-blocks", type=int, default=1000, help="blocks the simulator keeps")
    ap.add_argument("--long-settle-seconds", type=float, default=900,
                    help="after the chain ends, wait this long at most for ClickHouse to equal the truth")
    ap.add_argument("--long-pace", type=int, default=1, help="pace the chain by the listener's checkpoint (0: off)")
    ap.add_argument("--long-max-seconds", type=float, default=1e9, help="end the chain after this long (time box)")
    ap.add_argument("--long-rss-cap-mib", type=float, default=6000, help="end the chain if a service exceeds it")
    ap.add_argument("--long-event-ids", type=int, default=1,
                    help="simulator keeps the truth's event ids (~150 B/event) so a mismatch names its events (0: off)")
    ap.add_argument("--keep-data", action="store_true", help="keep the work directory (logs, checkpoint, chdb)")
    ap.add_argument("--trace-listener", action="store_true", help="tracemalloc + gc type counts in the listener")
    ap.add_argument("--trace-seconds", type=float, default=60.0)
    ap.add_argument("--durable", action="store_true", help="broker with restart-durable S3 storage (moto)")
    args = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    print(f"command: {' '.join([os.path.relpath(PY, ROOT), 'bench/e2e.py', *sys.argv[1:]])}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; simulator, listener, "
          f"broker ({'S3/moto' if args.durable else 'memory'}) and sink each in their own process")
    finished = False
    try:
        with LocalBroker(data / "broker", durable=args.durable) as broker:
            if args.long:
                long_run(args, data, broker)
            else:
                if not args.skip_backfill:
                    backfill(args, data, broker)
                if not args.skip_live:
                    live(args, data, broker)
        finished = True
    finally:
        kill_sinks()
        if args.keep_data or not finished:   # a failed run keeps its logs (sink/sink.log, broker/) to be read
            print(f"work directory kept{'' if finished else ' (the run failed; logs inside)'}: {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)
    if args.long:
        return 0
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
