"""`depinflow sql "SELECT ..."`: read-only SQL on the indexed data, while the service runs or not.

Uses the running service's query endpoint when `<data-dir>/query.json` points at one that answers,
otherwise opens the embedded ClickHouse directory directly; either way it says which on stderr, and
writes are refused the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from infra.local.state import default_data_dir
from pipelines.query.client import OUTPUT_FORMATS, SqlError, run_sql


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help="one read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN); "
                                      "'-' reads it from stdin")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the service's data directory (default $DEPINFLOW_DATA_DIR or ./.depinflow)")
    parser.add_argument("--format", choices=sorted(OUTPUT_FORMATS), default="table",
                        help="output format (default table); a FORMAT clause in the query wins")
    parser.add_argument("--database", default=os.environ.get("DEPINFLOW_CLICKHOUSE_DATABASE", "depinflow"),
                        help="default database for unqualified table names, when it exists "
                             "(default $DEPINFLOW_CLICKHOUSE_DATABASE or depinflow)")


def run(args: argparse.Namespace) -> int:
    data_dir = (args.data_dir or default_data_dir()).resolve()
    sql = sys.stdin.read() if args.query == "-" else args.query
    try:
        answer = run_sql(sql, data_dir, args.format, args.database or None)
    except SqlError as exc:
        print(exc.text, file=sys.stderr)
        return 1
    print(f"depinflow sql: used {answer.via}", file=sys.stderr)
    try:
        sys.stdout.buffer.write(answer.body)
        sys.stdout.flush()
    except BrokenPipeError:  # `depinflow sql ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
