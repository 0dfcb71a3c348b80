"""Classifier throughput on one core: parsed + classified transactions per second.

Run:  .venv/bin/python bench/classify.py [--seconds 3] [--seed 7]

Workload: one simulated day of the project's chain simulator (Helium, Render and unrelated
"noise" transactions, failures and forks, in the mix the simulator generates), each
transaction as a getTransaction result in base64 and in jsonParsed. Figures:
* parse+classify tx/s  - parse_transaction + classify_transaction (the listener's per-tx work:
                         instruction tree, decode of every Helium instruction into a record,
                         flow rules, USD) over the whole mix;
* classify-only tx/s   - classify_transaction on pre-parsed transactions;
* watched-only tx/s    - parse+classify restricted to transactions that touch a watched
                         program/mint (the expensive ones);
* skip tx/s            - classify_transaction on unwatched (noise) transactions: the early exit.
Goal (issue 5): well above 5,000 tx/s on one core together with parsing.

Stage mode (`--stages`, issue 6): CPU microseconds per transaction of each stage of the listener's
per-transaction work, on the transactions the backfill actually fetches (those touching a watched
program/mint/account) of a simulated day at `--tx-per-slot` (10 = bench/listen.py's figure):
  parse      parse_transaction(base64 getTransaction result)
  decode     ProgramRegistry.decode of every watched Helium instruction (a part of classify)
  classify   Classifier.classify(parsed transaction), decode included
  serialize  orjson bytes of every flow event, instruction record and dead letter (the listener's
             Kafka values)
  total      the three in one pass per transaction (caches and allocator as in the listener)
The parse and total passes start with the parser's memo caches cleared (clear_caches): the listener
sees every transaction once, so only values that recur within the day (programs, mints, DAO accounts,
repeated CPI data) may hit them; classify and decode read already-parsed transactions.
Process CPU time, min and median of --trials passes, with the listener's gen-0 GC threshold (50,000;
`--gc-default` for CPython's 700). `--compare DIR` runs the same stage bench on the
indexer package under DIR (e.g. an export of an older commit: `git archive <commit> indexer schemas |
tar -x -C DIR`) and on this checkout, alternating in child processes, so both sets of figures come
from the same run on the same input.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "--code" in sys.argv:  # stage bench of another export of the package (see --compare)
    sys.path.insert(0, sys.argv[sys.argv.index("--code") + 1])
else:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from indexer.decode.txparse import clear_caches, parse_transaction  # noqa: E402
from indexer.devchain.ledger import SimConfig, generate_ledger  # noqa: E402
from indexer.devchain.render import get_transaction_result  # noqa: E402
from indexer.networks.classify import Classifier, classify_transaction  # noqa: E402


def rate(fn, items, seconds: float) -> tuple[float, float, int]:
    """(wall, cpu) items per second of fn over `items`, best of passes for at least `seconds`.

    The CPU-time rate (process_time) is what one core sustains even when the machine is
    shared; the wall rate also includes waiting for the CPU.
    """
    best_wall = best_cpu = 0.0
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done == 0:
        w0, c0 = time.perf_counter(), time.process_time()
        for item in items:
            fn(item)
        dw, dc = time.perf_counter() - w0, time.process_time() - c0
        best_wall = max(best_wall, len(items) / dw)
        best_cpu = max(best_cpu, len(items) / max(dc, 1e-9))
        done += len(items)
    return best_wall, best_cpu, done


STAGES = ("parse", "decode", "classify", "serialize", "total")


def stage_times(seed: int, tx_per_slot: float, trials: int) -> tuple[dict[str, list[float]], int, int]:
    """{stage: [us/tx of each pass]}, transactions timed, flow events per pass."""
    ledger = generate_ledger(SimConfig(seed=seed, tx_per_slot=tx_per_slot))
    clf = Classifier()
    results = []
    for block in ledger.blocks:
        for rec in block.transactions:
            r = get_transaction_result(rec, "base64", True)
            r["slot"], r["blockTime"] = block.slot, block.block_time
            results.append(r)
    results = [r for r in results if clf.touches(parse_transaction(r))]  # what the backfill fetches
    parsed = [parse_transaction(r) for r in results]
    outs = [clf.classify(tx, "finalized") for tx in parsed]
    reg, helium = clf.registry, clf.helium_ids
    decode_args = [(ix.program_id, ix.data, ix.accounts, tx.slot)
                   for tx in parsed for ix in tx.walk() if ix.program_id in helium and ix.data is not None]
    dumps = orjson.dumps

    def serialize(out) -> None:
        for ev in out.flows:
            dumps(ev)
        for rec in out.instructions:
            dumps(rec)
        for rec in out.dead_letters:
            dumps(rec)

    def total(result) -> None:
        serialize(clf.classify(parse_transaction(result), "finalized"))

    def decode_all(_) -> None:
        dec = reg.decode
        for a in decode_args:
            dec(*a)

    work = {"parse": (parse_transaction, results), "decode": (decode_all, [None]),
            "classify": (lambda tx: clf.classify(tx, "finalized"), parsed), "serialize": (serialize, outs),
            "total": (total, results)}
    times: dict[str, list[float]] = {k: [] for k in STAGES}
    n = len(results)
    for _ in range(trials):
        for name in STAGES:
            fn, items = work[name]
            if name in ("parse", "total"):
                clear_caches()   # first sight of every transaction, as in the listener
            c0 = time.process_time()
            for item in items:
                fn(item)
            times[name].append((time.process_time() - c0) / n * 1e6)
    return times, n, sum(len(o.flows) for o in outs)


def _stage_line(label: str, times: dict[str, list[float]]) -> str:
    cells = "  ".join(f"{k} {min(v):6.1f}/{statistics.median(v):6.1f}" for k, v in times.items())
    return f"{label:10s} us/tx (min/median) {cells}"


# The listener's gen-0 GC threshold (pipelines.listen.processor.GC_GEN0_THRESHOLD, tune_gc). WHY here too:
# this bench holds a whole day of results, parsed transactions and outputs in memory, so with CPython's
# default threshold (700) every full collection walks all of it, which the listener never does.
LISTENER_GC_GEN0 = 50_000


def run_stages(args) -> int:
    if not args.gc_default:
        gen0, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(max(gen0, LISTENER_GC_GEN0), gen1, gen2)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    if args.compare:
        merged: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
        for _ in range(args.rounds):
            for label, extra in (("before", ["--code", args.compare]), ("after", [])):
                cmd = [sys.executable, __file__, "--stages", "--json", "--seed", str(args.seed),
                       *(["--gc-default"] if args.gc_default else []),
                       "--tx-per-slot", str(args.tx_per_slot), "--trials", str(args.trials), *extra]
                got = orjson.loads(subprocess.run(cmd, check=True, capture_output=True).stdout.splitlines()[-1])
                for k, v in got["times"].items():
                    merged[label].setdefault(k, []).extend(v)
        print(f"workload: {got['n']} watched transactions of a simulated day (seed {args.seed}, "
              f"{args.tx_per_slot:g} tx/slot), {got['flows']} flow events; before = {args.compare}")
        for label, times in merged.items():
            print(_stage_line(label, times))
        print("ratio      after/before (medians) " + "  ".join(
            f"{k} {statistics.median(merged['after'][k]) / statistics.median(merged['before'][k]):.2f}"
            for k in STAGES))
    else:
        times, n, flows = stage_times(args.seed, args.tx_per_slot, args.trials)
        if args.json:
            print(orjson.dumps({"times": times, "n": n, "flows": flows}).decode())
            return 0
        print(f"workload: {n} watched transactions of a simulated day (seed {args.seed}, "
              f"{args.tx_per_slot:g} tx/slot), {flows} flow events")
        print(_stage_line("this tree", times))
    print(f"load average at end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    print(f"python {platform.python_version()} on {platform.machine()}, one core per process")
    extra = f" --compare {args.compare} --rounds {args.rounds}" if args.compare else ""
    extra += " --gc-default" if args.gc_default else ""
    print(f"reproduce: .venv/bin/python bench/classify.py --stages --seed {args.seed} --tx-per-slot "
          f"{args.tx_per_slot:g} --trials {args.trials}{extra}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--stages", action="store_true", help="us/tx per stage (parse, decode, classify, serialize)")
    ap.add_argument("--tx-per-slot", type=float, default=10.0, help="stage mode: simulator density")
    ap.add_argument("--trials", type=int, default=3, help="stage mode: passes per process")
    ap.add_argument("--compare", metavar="DIR", help="stage mode: also time the indexer package under DIR")
    ap.add_argument("--rounds", type=int, default=3, help="stage mode with --compare: alternating child runs")
    ap.add_argument("--code", metavar="DIR", help=argparse.SUPPRESS)   # read before the imports
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--gc-default", action="store_true",
                    help="stage mode: CPython's default GC thresholds (default: the listener's, see tune_gc)")
    args = ap.parse_args()
    if args.stages:
        return run_stages(args)

    ledger = generate_ledger(SimConfig(seed=args.seed))
    records = list(ledger.transactions())
    clf = Classifier()
    classify_transaction(parse_transaction(get_transaction_result(records[0], "base64", True)))  # warm caches
    results = {enc: [get_transaction_result(r, enc, True) for r in records] for enc in ("base64", "jsonParsed")}
    parsed = [parse_transaction(r) for r in results["base64"]]
    watched_idx = [i for i, tx in enumerate(parsed) if clf.touches(tx)]
    noise = [tx for tx in parsed if not clf.touches(tx)]
    n_flows = sum(len(classify_transaction(tx).flows) for tx in parsed)

    def full(result):
        return classify_transaction(parse_transaction(result))

    print(f"workload: {len(records)} simulated transactions (seed {args.seed}, 1 day), "
          f"{len(watched_idx)} touch a watched program/mint, {len(noise)} do not; {n_flows} flow events")
    def show(label: str, enc: str, fn, items) -> None:
        wall, cpu, n = rate(fn, items, args.seconds)
        print(f"{label:15s} {enc:10s} {cpu:10,.0f} tx/s cpu  {wall:10,.0f} tx/s wall   ({n:,} tx timed)")

    for enc, items in results.items():
        show("parse+classify", enc, full, items)
        show("watched-only", enc, full, [items[i] for i in watched_idx])
    show("classify-only", "(parsed)", classify_transaction, parsed)
    show("skip (noise)", "(parsed)", classify_transaction, noise)
    print(f"load average at end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    print(f"python {platform.python_version()} on {platform.machine()}, pid {os.getpid()}, one core")
    print(f"reproduce: .venv/bin/python bench/classify.py --seconds {args.seconds:g} --seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
