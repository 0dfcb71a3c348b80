"""`depinflow run`: the main job on the embedded default.

Foundation stage: brings the embedded broker and ClickHouse up in the foreground, reports them
healthy, and stops them on Ctrl-C (or at once with --check). The listener and sink join here next.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

import orjson

from infra.local.broker import LocalBroker, broker_metadata_ok
from infra.local.clickhouse import chdb_dsn, get_client, ping, redact_dsn
from infra.local.state import default_data_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="broker log and ClickHouse data (default $DEPINFLOW_DATA_DIR or ./.depinflow)")
    parser.add_argument("--check", action="store_true", help="bring everything up, report health, stop")


def run(args: argparse.Namespace) -> int:
    data_dir = (args.data_dir or default_data_dir()).resolve()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalBroker(data_dir / "broker") as broker:
        dsn = chdb_dsn(data_dir / "clickhouse")
        report = {
            "broker": {"bootstrap": broker.bootstrap, "healthy": _broker_healthy(broker.bootstrap)},
            "clickhouse": {"dsn": redact_dsn(dsn), "healthy": ping(get_client(dsn))},
        }
        print(orjson.dumps(report).decode(), flush=True)
        if not args.check:
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
    return 0 if all(p["healthy"] for p in report.values()) else 1


def _broker_healthy(bootstrap: str) -> bool:
    try:
        broker_metadata_ok(bootstrap)
    except Exception:  # noqa: BLE001 - a health report, not a crash
        return False
    return True
