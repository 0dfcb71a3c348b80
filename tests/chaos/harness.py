"""Process-level harness for the chaos suites: real subprocesses that can be SIGKILLed and restarted.

The pipeline under test is the production one - `depinflow listen` and `depinflow sink` as separate
processes, a tansu broker child (restart-durable S3 storage on moto when asked), the chain simulator
serving real JSON-RPC + websocket - so a kill -9 here is exactly a crash there. A small supervisor
restarts a service that exits on its own (as systemd or Kubernetes would) and counts those exits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LONG = os.environ.get("DEPINFLOW_LONG") == "1"


@dataclass
class Service:
    """A supervised `depinflow` subprocess (one CLI command line), logs kept per incarnation."""

    name: str
    argv: list[str]
    workdir: Path
    proc: subprocess.Popen | None = None
    starts: int = 0
    kills: int = 0
    own_exits: list[int] = field(default_factory=list)     # exit codes of exits we did not cause

    def start(self) -> None:
        self.starts += 1
        log = open(self.workdir / f"{self.name}.{self.starts}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli.main", *self.argv], cwd=ROOT,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no flush, no checkpoint save, no offset commit - a crash."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
            self.kills += 1

    def terminate(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (graceful stop), SIGKILL if it does not exit within `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode

    def supervise(self) -> bool:
        """Restart after an exit we did not cause; True if it did."""
        if self.proc is not None and self.proc.poll() is not None:
            self.own_exits.append(self.proc.returncode)
            self.start()
            return True
        return False

    def run_to_end(self, extra: list[str], timeout: float) -> subprocess.CompletedProcess:
        """One foreground run of the same command plus `extra` (e.g. --until-caught-up)."""
        self.starts += 1
        with open(self.workdir / f"{self.name}.{self.starts}.log", "wb") as log:
            done = subprocess.run([sys.executable, "-m", "pipelines.cli.main", *self.argv, *extra], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=log, timeout=timeout)
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), "")

    def log_tail(self, n: int = 40) -> str:
        out = []
        for i in range(max(1, self.starts - 1), self.starts + 1):
            p = self.workdir / f"{self.name}.{i}.log"
            if p.exists():
                lines = p.read_text(errors="replace").splitlines()[-n:]
                out.append(f"--- {p.name}\n" + "\n".join(lines))
        return "\n".join(out)


def listen_argv(rpc_url: str, ws_url: str, bootstrap: str, prefix: str, checkpoint: Path,
                *extra: str) -> list[str]:
    return ["listen", "--rpc-url", rpc_url, "--ws-url", ws_url, "--bootstrap", bootstrap, "--topic-prefix", prefix,
            "--checkpoint", str(checkpoint), "--progress", "off", "--sweep-interval", "0.3", "--rpc-batch", "50",
            "--log-level", "INFO", *extra]


def sink_argv(bootstrap: str, dsn: str, prefix: str, group: str, *extra: str) -> list[str]:
    return ["sink", "--bootstrap", bootstrap, "--clickhouse-dsn", dsn, "--topic-prefix", prefix, "--group", group,
            "--batch-seconds", "0.3", "--log-level", "WARNING", *extra]


_READ = """
import json, sys
from infra.local.clickhouse import get_client
from pipelines.clickhouse.queries import table_counts, totals
client = get_client(sys.argv[1])
db = sys.argv[2]
raw = {t: int(client.query(f"SELECT count() FROM {db}.{t}").result_rows[0][0])
       for t in ("usage_fees", "emissions", "other_flows", "dead_letters")}
print(json.dumps({"totals": totals(client, db), "counts": table_counts(client, db), "raw": raw}))
"""


def read_clickhouse(dsn: str, database: str = "depinflow") -> dict:
    """Totals and row counts from a fresh process (chdb binds one data directory per process, and
    the directory was the sink's: reading it here would pin this test process to it)."""
    done = subprocess.run([sys.executable, "-c", _READ, dsn, database], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"reading ClickHouse failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
