"""The embedded infra brought up by `depinflow infra up` outlives the command: its pids and ports
are kept in `<data-dir>/infra.json` so `status` and `down` (and `run`, `sql`) can find it."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from infra.local.ports import port_open

STATE_FILE = "infra.json"


def default_data_dir() -> Path:
    """$DEPINFLOW_DATA_DIR, else `.depinflow/` in the current directory."""
    return Path(os.environ.get("DEPINFLOW_DATA_DIR", ".depinflow")).resolve()


@dataclass
class InfraState:
    broker_pid: int
    broker_host: str
    broker_port: int
    storage: str
    moto_pid: int | None
    clickhouse_dsn: str
    started_at: float

    @property
    def bootstrap(self) -> str:
        return f"{self.broker_host}:{self.broker_port}"

    def save(self, data_dir: Path) -> None:
        path = data_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, path)

    @classmethod
    def load(cls, data_dir: Path) -> InfraState | None:
        path = data_dir / STATE_FILE
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0); check /proc for its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def stop_pid(pid: int | None, timeout: float = 10.0) -> bool:
    """SIGTERM, wait, then SIGKILL. True if the process is gone."""
    if not pid_alive(pid):
        return True
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    return not pid_alive(pid)


def broker_up(state: InfraState) -> bool:
    return pid_alive(state.broker_pid) and port_open(state.broker_host, state.broker_port)
