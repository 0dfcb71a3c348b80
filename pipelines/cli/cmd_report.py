"""`depinflow report`: the invoice - usage fees vs emissions per network and day.

Reads `invoice_daily` (deduplicated, retractions excluded) for the last N accounting days with data
and prints per day usage fees (USD, by subtype), emissions (tokens and USD), purchases, reversals and
the usage/emissions ratio, then answers who pays, what funds the rewards and how the ratio trends.
`--totals` instead prints the deduplicated totals as JSON lines in exactly the shape of
`depinflow devchain truth`, so the two can be diffed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

from infra.local.state import default_data_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--network", choices=["helium", "render", "all"], default="all",
                        help="which network (default all)")
    parser.add_argument("--days", type=int, default=None,
                        help="accounting days ending at the latest day with data (default 7; "
                             "with --totals: all days)")
    parser.add_argument("--until", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                        help="last day of the period instead of the latest day with data")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table",
                        help="output format (default table)")
    parser.add_argument("--chart", type=Path, default=None, metavar="FILE.png",
                        help="also write a PNG chart: usage vs emissions over time per network")
    parser.add_argument("--totals", action="store_true",
                        help="print deduplicated totals as JSON lines (the `devchain truth` shape)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--data-dir", type=Path, default=None,
                       help="embedded data directory (default $DEPINFLOW_DATA_DIR or ./.depinflow); "
                            "read through the running service when there is one")
    where.add_argument("--dsn", default=None,
                       help="a ClickHouse DSN instead (http(s)://user:pass@host:8123 or chdb:///dir)")
    parser.add_argument("--database", default=os.environ.get("DEPINFLOW_CLICKHOUSE_DATABASE", "depinflow"),
                        help="ClickHouse database (default $DEPINFLOW_CLICKHOUSE_DATABASE or depinflow)")


def run(args: argparse.Namespace) -> int:
    from pipelines.report.source import SourceError, open_source

    if args.days is not None and args.days < 1:
        print("error: --days must be >= 1", file=sys.stderr)
        return 2
    networks = ("helium", "render") if args.network == "all" else (args.network,)
    try:
        source = open_source(args.dsn, (args.data_dir or default_data_dir()).resolve())
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"depinflow report: reading {source.description}, database {args.database}", file=sys.stderr)
    try:
        if args.totals:
            return _totals(source.client, args, networks)
        return _report(source.client, args, networks)
    except BrokenPipeError:  # `depinflow report ... | head`: the reader left, that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        if "invoice_daily" in str(exc) or "UNKNOWN_TABLE" in str(exc) or "UNKNOWN_DATABASE" in str(exc):
            print(f"error: database {args.database} has no invoice views yet - has the sink run "
                  f"(`depinflow run` / `depinflow migrate`)? ({str(exc).splitlines()[0][:200]})", file=sys.stderr)
            return 1
        raise


def _totals(client, args: argparse.Namespace, networks: tuple[str, ...]) -> int:
    from pipelines.clickhouse.queries import totals
    from pipelines.report.data import latest_day

    lines = [ln for ln in totals(client, args.database) if ln["network"] in networks]
    if args.days is not None or args.until is not None:
        last = args.until or latest_day(client, args.database, networks)
        if last is not None:
            first = last.toordinal() - (args.days or 10**6) + 1
            lines = [ln for ln in lines if first <= date.fromisoformat(ln["day"]).toordinal() <= last.toordinal()]
    out = sys.stdout
    for line in lines:
        out.write(json.dumps(line) + "\n")
    return 0


def _report(client, args: argparse.Namespace, networks: tuple[str, ...]) -> int:
    from pipelines.report.analysis import analyse
    from pipelines.report.chart import write_chart
    from pipelines.report.data import load_invoice
    from pipelines.report.render import period_text, render_csv, render_json, render_table

    data = load_invoice(client, args.database, networks, args.days or 7, args.until)
    invoices = [analyse(n, data.for_network(n)) for n in networks]
    if args.format == "csv":
        sys.stdout.write(render_csv(invoices))
        for inv in invoices:
            for question, answer in inv.answers.items():
                print(f"{inv.network} {question}: {answer}", file=sys.stderr)
    elif args.format == "json":
        sys.stdout.write(render_json(data, invoices))
    else:
        sys.stdout.write(render_table(data, invoices))
    if args.chart:
        # the x axis spans the days that have data (a 1-day run is not drawn as 6 empty days)
        days = [r.day for r in data.rows]
        path = write_chart(invoices, args.chart, period_text(data), min(days, default=None),
                           max(days, default=None))
        print(f"depinflow report: chart written to {path}", file=sys.stderr)
    return 0
