"""Crash suite: kill -9 the listener, the sink and the broker at random points of an end-to-end run.

    chain simulator (this process, real JSON-RPC + websocket, producing blocks)
      -> `depinflow listen` (subprocess) -> tansu broker (child, S3 storage on moto: restart-durable)
      -> `depinflow sink` (subprocess) -> ClickHouse (embedded, the sink's data directory)

Each run (one seed) backfills the ledger's history while new blocks keep arriving (forks included),
and during that SIGKILLs the three services at random moments for random downtimes, restarting each
afterwards (a supervisor also restarts a service that exits on its own, e.g. a listener failing
closed while the broker is gone). Then the chain finalizes, the listener runs to "caught up", the sink
drains, and the ClickHouse totals - read by the sink's `totals()` helper from a fresh process - must
equal the simulator's ground truth exactly: nothing lost, nothing double-counted, forks retracted.

Default: 2 seeds x 3 kills (each service once, random order and times). DEPINFLOW_LONG=1: 8 seeds x 6
kills (random targets). DEPINFLOW_CRASH_RUNS / _KILLS / _SEED override them; DEPINFLOW_CRASH_OVERLAP=1
allows crash loops (a service killed again while down or right after its restart).
Run alone: `pytest tests/chaos -k crash -s` prints one line per run.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from dataclasses import dataclass, field

import pytest

from indexer.devchain import SimConfig, generate_ledger, serve_in_thread
from infra.local.broker import LocalBroker
from infra.local.clickhouse import chdb_dsn
from tests.chaos.harness import LONG, Service, listen_argv, read_clickhouse, sink_argv

RUNS = int(os.environ.get("DEPINFLOW_CRASH_RUNS", "8" if LONG else "2"))
KILLS = int(os.environ.get("DEPINFLOW_CRASH_KILLS", "6" if LONG else "3"))
SEED0 = int(os.environ.get("DEPINFLOW_CRASH_SEED", "4242"))
SLOTS_PER_DAY = 1200          # ~1,150 blocks, ~1,500 transactions per ledger
LIVE_BLOCKS = 360             # produced while the services run and get killed ...
BLOCKS_PER_STEP, STEP_SECONDS = 2, 0.1   # ... at 20 blocks/s (8x real cadence): ~18 s of live chain
TARGETS = ("listener", "sink", "broker")
OVERLAP = os.environ.get("DEPINFLOW_CRASH_OVERLAP") == "1"
STEP_TIMEOUT = float(os.environ.get("DEPINFLOW_CRASH_STEP_TIMEOUT", "420"))   # catch-up / drain, each
# tansu (the test broker) can leave a consumer group in a rebalance that never completes after it was killed
# during a JoinGroup/SyncGroup (BENCHMARKS.md, crash suite): a drain sink that gets NO partitions within this
# time is the broker's stall, not ours.
GROUP_STALL = float(os.environ.get("DEPINFLOW_CRASH_GROUP_STALL", "60"))
# how the sink gets its partitions (`depinflow sink --assignment`): alternating by seed unless forced, so both
# the group coordinator path (kafka-python, the sink's default) and the manual path of the embedded `depinflow
# run` (confluent-kafka; it joins no group, so the broker cannot leave it without partitions) are crashed
ASSIGNMENT = os.environ.get("DEPINFLOW_CRASH_ASSIGNMENT")
CLIENT_BY_ASSIGNMENT = {"group": "kafka-python", "manual": "confluent"}


def assignment_for(seed: int) -> str:
    return ASSIGNMENT or ("group" if seed % 2 == 0 else "manual")


@dataclass
class Kill:
    at: float
    target: str
    downtime: float
    done: bool = False
    restarted: bool = False


@dataclass
class Report:
    seed: int
    kills: list[Kill] = field(default_factory=list)
    assignment: str = "group"
    own_exits: dict[str, list[int]] = field(default_factory=dict)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    stop_codes: dict[str, int | None] = field(default_factory=dict)   # exit codes of the SIGTERM stops
    flow_rows_raw: int = 0
    flow_rows_final: int = 0
    group_stall: bool = False       # the drain replayed from offset 0 under a fresh group (see GROUP_STALL)

    def line(self) -> str:
        ks = ", ".join(f"{k.target}@{k.at:.1f}s/{k.downtime:.1f}s" for k in self.kills)
        exits = {k: v for k, v in self.own_exits.items() if v}
        return (f"seed {self.seed} ({self.assignment} assignment, {CLIENT_BY_ASSIGNMENT[self.assignment]}): kills [{ks}]; self-exits {exits or 'none'}; flow rows raw {self.flow_rows_raw} "
                f"-> deduplicated {self.flow_rows_final}; {self.seconds:.0f} s "
                f"({', '.join(f'{k} {v:.0f}' for k, v in self.phases.items())}); SIGTERM exit codes {self.stop_codes}"
                + ("; BROKER GROUP STALL: drained by a fresh group from offset 0" if self.group_stall else ""))


def drain(sink: Service, fresh_sink: Service, report: Report) -> subprocess.CompletedProcess:
    """The final `--until-idle` sink run of the crashed group; if tansu never hands that group its partitions,
    a sink of a fresh group replays every topic from offset 0 into the same tables instead.

    The fallback still proves nothing was lost or double-counted between Kafka and ClickHouse (a replay must
    leave every total unchanged), but not the crashed group's own commit position, which is why it is
    reported in the run's line. A drain that had partitions and still did not finish is a failure."""
    # WHY these drain settings: nothing is killed any more and the listener has published everything (it ran
    # to caught up), so the quiet time after the high watermarks is a margin only (1 s), and the backlog of
    # the finalization (every event again, finalized) goes in batches of up to 2 s instead of the chaos
    # phase's 0.3 s (seed 4243 drained ~2,000 rows in ~20 batches of 50-150 rows: 14-16 s)
    args = ["--until-idle", "--idle-seconds", "1", "--batch-seconds", "2", "--log-level", "INFO"]
    if report.assignment == "manual":             # no group join: nothing for the broker to stall
        return sink.run_to_end(args, timeout=STEP_TIMEOUT)
    # the drain's group join with a 3 s session: tansu holds a JoinGroup ~half the session (5 s -> 2 s);
    # the crashed members left at the SIGTERM stop before it, so no dead member's session is waited out
    quick = sink.workdir / "drain-session.toml"
    quick.write_text("[kafka]\nconsumer = { session_timeout_ms = 3000, heartbeat_interval_ms = 500 }\n")
    args += ["--config", str(quick)]
    try:
        return sink.run_to_end(args, timeout=GROUP_STALL)
    except subprocess.TimeoutExpired:
        log = (sink.workdir / f"{sink.name}.{sink.starts}.log").read_text(errors="replace")
        if "sink_partitions_assigned" in log:
            raise
    report.group_stall = True
    return fresh_sink.run_to_end(args, timeout=STEP_TIMEOUT)


def kill_plan(rng: random.Random, n: int, duration: float, overlap: bool = OVERLAP) -> list[Kill]:
    """n kills at random moments; the first three hit each service once (in random order).

    A service is killed only while it runs: its next kill comes at least 1 s after its restart. With
    `overlap` (DEPINFLOW_CRASH_OVERLAP=1) kills may also land while it is down or just restarted - a
    crash loop, where a restart itself is killed again.
    """
    targets = list(TARGETS)
    rng.shuffle(targets)
    targets = (targets + [rng.choice(TARGETS) for _ in range(n)])[:n]
    times = sorted(rng.uniform(0.5, duration - 1.0) for _ in range(n))
    plan = [Kill(t, target, rng.uniform(0.2, 3.0)) for t, target in zip(times, targets, strict=True)]
    if not overlap:
        up_again: dict[str, float] = {}
        for k in plan:
            k.at = max(k.at, up_again.get(k.target, 0.0))
            up_again[k.target] = k.at + k.downtime + 1.0
        plan.sort(key=lambda k: k.at)
    return plan


def seeds() -> list[int]:
    return [SEED0 + i for i in range(RUNS)]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("seed", seeds())
def test_kill9_listener_sink_and_broker_then_totals_equal_the_truth(seed, tmp_path):
    rng = random.Random(seed)
    ledger = generate_ledger(SimConfig(seed=seed, slots_per_day=SLOTS_PER_DAY))
    truth = ledger.truth_lines("addresses")
    start = len(ledger.blocks) - LIVE_BLOCKS
    duration = LIVE_BLOCKS / BLOCKS_PER_STEP * STEP_SECONDS
    report = Report(seed, kill_plan(rng, KILLS, duration), assignment=assignment_for(seed))
    dsn = chdb_dsn(tmp_path / "clickhouse")
    prefix, group = f"crash{seed}", f"sink{seed}"
    broker = LocalBroker(tmp_path / "broker", durable=True).start()
    began = time.monotonic()
    try:
        with serve_in_thread(ledger, start_at=start) as node:
            listener = Service("listener", listen_argv(node.url, node.ws_url, broker.bootstrap, prefix,
                                                       tmp_path / "listener.json"), tmp_path)
            sink = Service("sink", sink_argv(broker.bootstrap, dsn, prefix, group, "--assignment", report.assignment,
                                             "--kafka-client", CLIENT_BY_ASSIGNMENT[report.assignment]), tmp_path)
            services = {"listener": listener, "sink": sink}
            sink.start()
            listener.start()
            try:
                t = time.monotonic()
                report.phases["setup"] = t - began
                _chaos(node, broker, services, report.kills, duration)
                report.phases["chaos"] = time.monotonic() - t
                node.finalize_all()
                # converge: the listener publishes everything up to the finalized tip and exits ...
                t = time.monotonic()
                rc = listener.terminate()
                report.phases["listener stop"] = time.monotonic() - t
                report.stop_codes["listener"] = rc
                t = time.monotonic()
                done = listener.run_to_end(["--until-caught-up", "--log-level", "INFO"], timeout=STEP_TIMEOUT)
                assert done.returncode == 0, listener.log_tail()
                report.phases["listener catch-up"] = time.monotonic() - t
                # ... and a sink drains what is left and exits
                t = time.monotonic()
                rc = sink.terminate()
                report.phases["sink stop"] = time.monotonic() - t
                report.stop_codes["sink"] = rc
                t = time.monotonic()
                fresh = Service("sink-fresh-group", sink_argv(broker.bootstrap, dsn, prefix, f"{group}-fresh"), tmp_path)
                drained = drain(sink, fresh, report)
                assert drained.returncode == 0, sink.log_tail()
                report.phases["sink drain"] = time.monotonic() - t
            finally:
                for s in services.values():
                    s.terminate(10)
                report.own_exits = {name: s.own_exits for name, s in services.items()}
    finally:
        broker.stop()
    t = time.monotonic()
    got = read_clickhouse(dsn)
    report.phases["read"] = time.monotonic() - t
    report.seconds = time.monotonic() - began
    report.flow_rows_raw = sum(got["raw"][t] for t in ("usage_fees", "emissions", "other_flows"))
    report.flow_rows_final = sum(got["counts"][t] for t in ("usage_fees", "emissions", "other_flows"))
    print("\n" + report.line())
    assert all(k.done and k.restarted for k in report.kills), report.line()
    # a SIGTERM stop ends cleanly (0), or gives up on unacknowledged messages with the broker away (3), or
    # lands before a just-restarted listener installed its handler (-15); 1 = it failed or hung (watchdog)
    assert report.stop_codes["listener"] in (0, 3, -15), report.line()
    assert got["totals"] == truth, report.line()
    assert got["counts"]["dead_letters"] == 0, report.line()


def _chaos(node, broker: LocalBroker, services: dict[str, Service], plan: list[Kill], duration: float) -> None:
    """Produce blocks for `duration` seconds while executing the kill plan; restart after each downtime."""
    t0 = time.monotonic()
    next_step = 0.0
    last_restart: dict[str, float] = {}
    while True:
        now = time.monotonic() - t0
        if now >= next_step and now < duration:
            node.advance(BLOCKS_PER_STEP)
            next_step += STEP_SECONDS
        for k in plan:
            if not k.done and now >= k.at:
                _kill(k.target, broker, services)
                k.done = True
            elif k.done and not k.restarted and now >= k.at + k.downtime:
                _restart(k.target, broker, services)
                k.restarted = True
                last_restart[k.target] = now
        down = {k.target for k in plan if k.done and not k.restarted}
        for name, svc in services.items():       # the supervisor: restart a self-exit after 1 s
            if name not in down and not svc.alive() and now - last_restart.get(name, -9) >= 1.0:
                svc.supervise()
                last_restart[name] = now
        if now >= duration and all(k.restarted for k in plan):
            return
        time.sleep(0.02)


def _kill(target: str, broker: LocalBroker, services: dict[str, Service]) -> None:
    if target == "broker":
        broker.kill()
    else:
        services[target].kill9()


def _restart(target: str, broker: LocalBroker, services: dict[str, Service]) -> None:
    if target == "broker":
        broker.restart()                 # same port, same S3 bucket: topics, data, offsets survive
    elif not services[target].alive():
        services[target].start()
