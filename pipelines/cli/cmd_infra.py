"""`depinflow infra up|down|status`: the embedded broker and ClickHouse, by hand."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

from infra.local.broker import BrokerError, LocalBroker, broker_metadata_ok
from infra.local.clickhouse import chdb_dsn, get_client, ping, redact_dsn
from infra.local.state import InfraState, broker_up, default_data_dir, pid_alive, stop_pid


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where broker logs, state and ClickHouse data live (default $DEPINFLOW_DATA_DIR or ./.depinflow)")
    parser.add_argument("--durable", action="store_true",
                        help="restart-durable broker storage (S3 on a local moto server) instead of memory")
    parser.add_argument("--port", type=int, default=0, help="broker port (default: a free loopback port)")


def run(args: argparse.Namespace) -> int:
    data_dir = (args.data_dir or default_data_dir()).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return {"up": _up, "down": _down, "status": _status}[args.action](data_dir, args)


def _up(data_dir: Path, args: argparse.Namespace) -> int:
    state = InfraState.load(data_dir)
    if state and broker_up(state):
        print(f"already up: broker {state.bootstrap} (pid {state.broker_pid})")
        return _status(data_dir, args)
    broker = LocalBroker(data_dir / "broker", durable=args.durable, port=args.port, detached=True)
    try:
        broker.start()
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    dsn = chdb_dsn(data_dir / "clickhouse")
    InfraState(
        broker_pid=broker.proc.pid, broker_host=broker.host, broker_port=broker.port,
        storage=broker.storage_url, moto_pid=broker.s3.proc.pid if broker.s3 else None,
        clickhouse_dsn=dsn, started_at=time.time(),
    ).save(data_dir)
    # Opening the engine once creates the data directory and proves it works.
    get_client(dsn)
    print(f"broker up at {broker.bootstrap} ({broker.storage_url}, log {broker.log_path})")
    return _status(data_dir, args)


def _down(data_dir: Path, args: argparse.Namespace) -> int:
    state = InfraState.load(data_dir)
    if state is None:
        print(f"nothing to stop (no infra state in {data_dir})")
        return 0
    ok = stop_pid(state.broker_pid)
    ok = stop_pid(state.moto_pid) and ok
    (data_dir / "infra.json").unlink(missing_ok=True)
    print("broker stopped" if ok else "error: broker did not stop", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _clickhouse_health(dsn: str) -> dict:
    try:
        client = get_client(dsn)
    except Exception as exc:  # noqa: BLE001 - reported, e.g. locked by a running `depinflow run`
        return {"healthy": False, "dsn": redact_dsn(dsn), "error": str(exc).splitlines()[0][:300]}
    return {"healthy": ping(client), "dsn": redact_dsn(dsn)}


def _status(data_dir: Path, args: argparse.Namespace) -> int:
    state = InfraState.load(data_dir)
    if state is None:
        report = {"broker": {"healthy": False, "error": "not started (run: depinflow infra up)"},
                  "clickhouse": _clickhouse_health(chdb_dsn(data_dir / "clickhouse"))}
    else:
        broker = {"healthy": False, "bootstrap": state.bootstrap, "pid": state.broker_pid,
                  "storage": state.storage}
        if broker_up(state):
            try:
                broker["topics"] = broker_metadata_ok(state.bootstrap)
                broker["healthy"] = True
            except Exception as exc:  # noqa: BLE001
                broker["error"] = str(exc)
        elif not pid_alive(state.broker_pid):
            broker["error"] = "broker process is not running"
        report = {"broker": broker, "clickhouse": _clickhouse_health(state.clickhouse_dsn)}
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return 0 if all(part["healthy"] for part in report.values()) else 1
