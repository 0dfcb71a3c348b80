"""Benchmark of the listener: backfill transactions/s into Kafka, and live lag confirmed -> Kafka ack.

Everything runs on this machine: the chain simulator (`depinflow devchain serve`) in its own process,
the tansu broker in its own process, the listener in this one.

1. Backfill: a simulated ledger (--days, --tx-per-slot) served "all finalized"; the listener runs
   `run_until_caught_up()` from an empty checkpoint (address mode, base64 getTransaction batches of 100)
   into fresh topics. Printed: transactions/s end to end (seam lookup to the last acknowledgement and the
   checkpoint), flow events, Kafka messages, and the share of time the listener spent in decode + classify
   + serialize. The first pass also warms the simulator's per-transaction render cache (a real node
   has its ledger on disk); the measured pass is the second one, into other topics, from a new checkpoint.
2. Live: the simulator in --realtime mode (one block every ~400 ms, confirmed one block behind); the
   listener follows with websocket hints + 1 s sweeps for --live-seconds. Printed: p50/p90/p99/max of
   (Kafka acknowledgement of all of a transaction's messages) - (its confirmed logsNotification arrival).

CPU per 1k transactions is printed per process; the listener's is also split into its main process
(listing, windows, checkpoint, IPC) and its backfill workers (`--workers N`: fork server + workers).
`gc_main` is the cyclic garbage collector's work in this process during the pass; `--gc-default` runs
the in-process listener with CPython's default thresholds instead of tune_gc's.
`--split` (in-process) adds passes with stages stubbed out and prints the listener's CPU per transaction
split into fetch/listing/event loop, parse+classify+serialize, and Kafka produce + delivery reports.
`--cold-caches` clears the parser's memo caches before each pass, so an in-process pass sees the ledger
at first sight like the workers (forked fresh for every pass) do; without it, passes 2+ of the
in-process listener reuse the base58 renderings of pass 1.

Run:  .venv/bin/python bench/listen.py [--days 1] [--tx-per-slot 20] [--live-seconds 40]
      .venv/bin/python bench/listen.py --tx-per-slot 10 --skip-live --runs 3 [--workers 2] [--cold-caches]
      .venv/bin/python bench/listen.py --tx-per-slot 10 --skip-live --runs 3 --cold-caches --split
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.decode.txparse import clear_caches  # noqa: E402
from infra.local.broker import LocalBroker  # noqa: E402
from infra.local.ports import free_port, wait_for_port  # noqa: E402
from pipelines.listen.config import ListenerConfig  # noqa: E402
from pipelines.listen.service import Listener  # noqa: E402


def start_devchain(args, port: int, realtime: bool, tx_per_slot: float, days: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipelines.cli.main", "devchain", "serve", "--seed", str(args.seed),
           "--days", str(days), "--tx-per-slot", str(tx_per_slot), "--port", str(port)]
    if realtime:
        cmd.append("--realtime")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not wait_for_port("127.0.0.1", port, timeout=1800):
        proc.kill()
        raise RuntimeError("devchain did not start: " + (proc.stdout.read() if proc.stdout else ""))
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and of its reaped children) from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


STAGES = (("indexer/rpc", "RPC client"), ("indexer/sources", "sources (backfill/live)"),
          ("indexer/decode", "decode"), ("indexer/networks", "classify"),
          ("indexer/checkpoint", "checkpoint"), ("pipelines/listen", "listener (messages, publish)"),
          ("pipelines/kafka", "Kafka messages"), ("confluent_kafka", "Kafka producer"),
          ("kafka/", "Kafka producer"), ("aiohttp", "HTTP (aiohttp)"), ("yarl", "HTTP (aiohttp)"),
          ("multidict", "HTTP (aiohttp)"), ("asyncio", "event loop"), ("selectors", "event loop"),
          ("structlog", "logging"), ("logging", "logging"))
_WAITS = ("poll", "select", "epoll", "sleep", "acquire", "wait")


def profile_by_stage(prof: cProfile.Profile) -> list[tuple[str, float, float]]:
    """(stage, own seconds, share); a C function counts where its biggest caller is, waits as idle."""
    st = pstats.Stats(prof)
    by: dict[str, float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, tt, _ct, callers) in st.stats.items():
        if filename == "~":
            caller = max(callers.items(), key=lambda kv: kv[1][2])[0] if callers else ("~", 0, name)
            filename = caller[0]
            if any(w in name for w in _WAITS):
                by["idle (select/poll/locks)"] += tt
                continue
        stage = next((label for key, label in STAGES if key in filename), "other (stdlib, orjson ...)")
        by[stage] += tt
    total = sum(by.values()) or 1.0
    return sorted(((k, v, v / total) for k, v in by.items()), key=lambda r: -r[1])


def fork_server_pid() -> int | None:
    """The multiprocessing fork server that forks the backfill workers (pipelines.listen.workers):
    they are its children, so their CPU shows in its reaped-children time, not in ours."""
    from multiprocessing import forkserver
    return getattr(forkserver._forkserver, "_forkserver_pid", None)


def listener_cpu() -> float:
    """CPU of the listener process, its reaped children and the fork server with its reaped workers."""
    return main_cpu() + workers_cpu()


def main_cpu() -> float:
    """CPU of the listener's own process (listing, windows and IPC when workers run the chunks)."""
    return cpu_seconds(os.getpid())


def workers_cpu() -> float:
    """CPU of the fork server and its reaped backfill workers (0 when the backfill runs in-process)."""
    fs = fork_server_pid()
    return cpu_seconds(fs) if fs else 0.0


def measure(pids: dict[str, int]) -> dict[str, float]:
    """CPU-seconds so far of each measured process; the listener is split into its main process and its
    workers, so the cost of the worker mode's IPC shows apart from the decode/classify/publish work."""
    own = os.getpid()
    out = {name: (listener_cpu() if pid == own else cpu_seconds(pid)) for name, pid in pids.items()}
    out["main"] = main_cpu()
    out["workers"] = workers_cpu()
    return out


class GcMeter:
    """Collections per generation and the thread CPU spent in them, in this process (gc.callbacks).

    WHY in the bench: with CPython's default thresholds the cyclic collector took 10-13 % of the
    listener's CPU (pipelines.listen.processor.tune_gc); `--gc-default` runs the in-process listener
    with the defaults so that the two can be compared in one run."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.collections[info["generation"]] += 1
            self.seconds += time.thread_time() - self._start

    def snapshot(self) -> tuple[list[int], float]:
        return list(self.collections), self.seconds


GC_METER = GcMeter()


@contextlib.contextmanager
def stage_stub(variant: str):
    """--split: run a pass with part of the listener's per-batch work replaced by a no-op.

    "no_kafka": transactions are parsed, classified and serialized (messages built as usual) but not
    handed to librdkafka (no produce(), no delivery reports, no producer threads' work);
    "fetch_only": getTransaction batches are fetched and listed as usual, process_batch does nothing.
    Differences between the full pass and these are the CPU of each stage in the running listener
    (measurement only: nothing is published by these passes)."""
    from pipelines.listen.processor import KafkaProcessor
    from pipelines.listen.publisher import _ConfluentBatch
    saved = (KafkaProcessor.process_batch, _ConfluentBatch.send, _ConfluentBatch.seal)

    def send(self, topic, value, key, headers) -> None:
        self.pending += 1

    def seal(self):
        self.future.set_result(None)
        return self.future

    def process_batch(self, txs):
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut
    try:
        if variant == "no_kafka":
            _ConfluentBatch.send, _ConfluentBatch.seal = send, seal
        elif variant == "fetch_only":
            KafkaProcessor.process_batch = process_batch
        yield
    finally:
        KafkaProcessor.process_batch, _ConfluentBatch.send, _ConfluentBatch.seal = saved


def backfill_pass(url: str, bootstrap: str, data: Path, prefix: str, args, pids: dict[str, int],
                  profile: bool = False) -> dict:
    cfg = ListenerConfig(rpc_url=url, websocket=False, bootstrap=bootstrap, topic_prefix=prefix,
                         checkpoint=str(data / f"{prefix}.json"), progress="off", partitions=args.partitions,
                         fetch_concurrency=args.fetch_concurrency, rpc_batch=args.rpc_batch,
                         kafka_client=args.kafka_client, mode=args.mode, workers=args.workers,
                         from_slot=0 if args.mode == "blocks" else None,
                         producer_overrides=dict(kv.split("=", 1) for kv in getattr(args, "producer", None) or []))
    listener = Listener(cfg)
    if args.cold_caches:
        clear_caches()   # first sight of every transaction in this process too, as in a fresh worker
    prof = cProfile.Profile() if profile else None
    loadavg = Path("/proc/loadavg").read_text().split()[0]
    gc_before = GC_METER.snapshot()
    before = measure(pids)
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    summary = listener.run_until_caught_up(timeout=3600)
    if prof:
        prof.disable()
    wall = time.perf_counter() - t0
    after = measure(pids)
    cpu = {name: round(after[name] - before[name], 2) for name in after}
    p = listener.process_stats
    return {"transactions": summary.transactions, "seconds": round(wall, 2),
            "tx_per_s": round(summary.transactions / wall), "kafka_client": listener.kafka_client,
            "mode": args.mode, "workers": args.workers,
            "flow_events": summary.events,
            "instructions": summary.instructions, "dead_letters": summary.dead_letters,
            "kafka_messages": summary.events + summary.instructions + summary.dead_letters,
            "decode_classify_serialize_s": round(p.cpu_seconds, 2),
            "rpc_requests": listener.rpc_stats.requests, "rpc_errors": listener.rpc_stats.total_errors(),
            "rpc_calls": dict(listener.rpc_stats.calls),
            "loadavg_at_start": loadavg, "cpu_seconds": cpu,
            "cpu_us_per_tx": {k: round(1e6 * v / max(1, summary.transactions)) for k, v in cpu.items()},
            "gc_main": {"collections": [a - b for a, b in zip(GC_METER.collections, gc_before[0], strict=True)],
                        "cpu_s": round(GC_METER.seconds - gc_before[1], 3)},
            "profile": profile_by_stage(prof) if prof else None}


def live_pass(url: str, bootstrap: str, data: Path, seconds: float, kafka_client: str) -> dict:
    cfg = ListenerConfig(rpc_url=url, bootstrap=bootstrap, topic_prefix="benchlive", progress="off",
                         checkpoint=str(data / "live.json"), sweep_interval=1.0, kafka_client=kafka_client)
    listener = Listener(cfg)

    async def main() -> None:
        stop_event = asyncio.Event()
        task = asyncio.create_task(listener.arun(stop_event))
        await asyncio.sleep(seconds)
        stop_event.set()
        await task
    asyncio.run(main())
    lags = sorted(listener.source_stats.live_ack_lag)
    if not lags:
        return {"samples": 0}

    def q(p: float) -> float:
        return round(1000 * lags[min(len(lags) - 1, int(p * len(lags)))], 1)
    return {"samples": len(lags), "p50_ms": q(0.50), "p90_ms": q(0.90), "p99_ms": q(0.99),
            "max_ms": round(1000 * lags[-1], 1), "mean_ms": round(1000 * statistics.fmean(lags), 1),
            "live_txs": listener.source_stats.txs.get("live", 0), "hints": listener.source_stats.hints,
            "sweeps": listener.source_stats.sweeps}


def split_passes(url: str, bootstrap: str, data: Path, args, pids: dict[str, int], full: list[dict]) -> None:
    """--split: the listener's CPU per transaction by stage, from --runs passes of each stubbed variant
    (stage_stub) after the measured full passes (median of --runs each)."""
    if args.workers or full[0]["kafka_client"] != "confluent":
        print("--split needs the in-process listener (--workers 0) on confluent-kafka: skipped")
        return
    cpu: dict[str, list[float]] = {"full": [r["cpu_seconds"]["main"] * 1e6 / r["transactions"] for r in full]}
    for i in range(args.runs):
        for variant in ("no_kafka", "fetch_only"):
            if args.cold_caches:
                clear_caches()
            with stage_stub(variant):
                r = backfill_pass(url, bootstrap, data, f"bench{variant}{i}", args, pids)
            r.pop("profile")
            cpu.setdefault(variant, []).append(r["cpu_seconds"]["main"] * 1e6 / r["transactions"])
            print(f"split pass {variant}: {r}")
    med = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"LISTENER CPU SPLIT (us per tx, median of {args.runs}; process CPU incl. librdkafka threads): "
          f"total {med['full']:.0f} = fetch, listing, event loop, checkpoint {med['fetch_only']:.0f} "
          f"+ parse, classify, serialize {med['no_kafka'] - med['fetch_only']:.0f} "
          f"+ Kafka produce() and delivery reports {med['full'] - med['no_kafka']:.0f}  "
          f"(runs: { {k: [round(x) for x in v] for k, v in cpu.items()} })")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--tx-per-slot", type=float, default=20.0)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--fetch-concurrency", type=int, default=8)
    ap.add_argument("--rpc-batch", type=int, default=100)
    ap.add_argument("--live-seconds", type=float, default=40.0)
    ap.add_argument("--live-tx-per-slot", type=float, default=8.0)
    ap.add_argument("--kafka-client", default="auto", choices=["auto", "confluent", "kafka-python"])
    ap.add_argument("--mode", default="addresses", choices=["addresses", "blocks"])
    ap.add_argument("--producer", action="append", metavar="KEY=VALUE",
                    help="librdkafka producer setting for the listener, e.g. linger.ms=50 (repeatable)")
    ap.add_argument("--workers", type=int, default=0, help="backfill worker processes (0 = in-process)")
    ap.add_argument("--cold-caches", action="store_true",
                    help="clear the parser's memo caches before each pass: the in-process listener then sees the "
                         "ledger at first sight, like worker processes (forked fresh per pass) always do")
    ap.add_argument("--gc-default", action="store_true",
                    help="in-process listener with CPython's default GC thresholds (no tune_gc), for comparison")
    ap.add_argument("--runs", type=int, default=3, help="measured backfill passes (median reported)")
    ap.add_argument("--split", action="store_true",
                    help="in-process only: after the measured passes, --runs passes without Kafka and --runs "
                         "with fetching only; prints the listener's CPU per tx by stage (differences)")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the last measured pass (listener main thread; slows it ~2x)")
    ap.add_argument("--skip-backfill", action="store_true")
    ap.add_argument("--skip-live", action="store_true")
    args = ap.parse_args()
    import logging

    import structlog
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    if args.gc_default:
        import pipelines.listen.processor as processor
        processor.GC_GEN0_THRESHOLD = 0   # tune_gc then leaves the thresholds alone (workers still tune)
    data = Path(tempfile.mkdtemp(prefix="bench-listen-"))
    print(f"command: {' '.join([os.path.relpath(sys.executable, ROOT), 'bench/listen.py', *sys.argv[1:]])}")
    print(f"machine: {os.cpu_count()} cores; simulator, broker and listener on this machine")
    try:
        with LocalBroker(data / "broker") as broker:
            if not args.skip_backfill:
                port = free_port()
                t0 = time.perf_counter()
                sim = start_devchain(args, port, False, args.tx_per_slot, args.days)
                print(f"simulator: seed {args.seed}, {args.days} day(s), {args.tx_per_slot} tx/slot, "
                      f"generated in {time.perf_counter() - t0:.0f} s")
                try:
                    url = f"http://127.0.0.1:{port}"
                    pids = {"listener+workers": os.getpid(), "simulator": sim.pid, "broker": broker.proc.pid}
                    warm = backfill_pass(url, broker.bootstrap, data, "benchwarm", args, pids)
                    print(f"backfill pass 1 (cold simulator cache): {warm}")
                    runs = []
                    for i in range(args.runs):
                        hot = backfill_pass(url, broker.bootstrap, data, f"benchhot{i}", args, pids,
                                            profile=args.profile and i == args.runs - 1)
                        prof = hot.pop("profile")
                        print(f"backfill pass {i + 2} (measured):  {hot}")
                        if prof:
                            print("listener profile (own time by stage, main thread; under cProfile):")
                            for stage, secs, share in prof:
                                print(f"    {stage:<34}{secs:>8.2f} s {share:>6.1%}")
                        else:
                            runs.append(hot)
                    if runs:
                        med = sorted(runs, key=lambda r: r["tx_per_s"])[len(runs) // 2]
                        per_k = {k: round(statistics.median(r["cpu_seconds"][k] for r in runs)
                                          * 1000 / med["transactions"], 3) for k in med["cpu_seconds"]}
                        split = {k: per_k.pop(k) for k in ("main", "workers")}
                        print(f"BACKFILL: median {med['tx_per_s']} tx/s end to end into Kafka over {len(runs)} "
                              f"runs {sorted(r['tx_per_s'] for r in runs)} ({med['transactions']} tx, "
                              f"{med['kafka_messages']} messages); CPU-s per 1k tx (median): {per_k}, "
                              f"total {round(sum(per_k.values()), 3)}; listener split {split}")
                    if args.split:
                        split_passes(url, broker.bootstrap, data, args, pids, runs)
                finally:
                    stop(sim)
            if not args.skip_live:
                port = free_port()
                sim = start_devchain(args, port, True, args.live_tx_per_slot, 1)
                try:
                    live = live_pass(f"http://127.0.0.1:{port}", broker.bootstrap, data, args.live_seconds,
                                     args.kafka_client)
                    print(f"live ({args.live_seconds:.0f} s at ~400 ms/block, {args.live_tx_per_slot} tx/slot): {live}")
                    if live.get("samples"):
                        print(f"LIVE LAG confirmed -> Kafka ack: p50 {live['p50_ms']} ms, p99 {live['p99_ms']} ms "
                              f"({live['samples']} transactions)")
                finally:
                    stop(sim)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
