"""`depinflow flows FILE`: audit one transaction — its classified flow events as v1 JSON lines.

FILE is a getTransaction JSON (the full JSON-RPC response or just its `result`, any encoding),
or several of them as JSON lines; `-` reads stdin. Each output line validates against
schemas/events/v1/flow_event.json. `--kind instructions|dead-letters` prints the other two
record streams the listener publishes for the same input instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from indexer.decode.errors import DecodeError
from indexer.decode.txparse import parse_response
from indexer.networks.classify import Classifier
from indexer.networks.config import load_config
from indexer.networks.events import Commitment
from indexer.networks.prices import PriceBook


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="getTransaction JSON (response or result; JSON lines for several); '-' = stdin")
    parser.add_argument("--prices", type=Path, default=None,
                        help="USD prices as CSV (token,day,usd) or JSON; DC and the HNT purchase price need none")
    parser.add_argument("--labels", type=Path, action="append", default=[],
                        help="extra network label file merged into schemas/networks/*.json (repeatable)")
    parser.add_argument("--kind", choices=["flows", "instructions", "dead-letters"], default="flows",
                        help="which records to print (default: flows)")
    parser.add_argument("--commitment", choices=[c.value for c in Commitment], default=Commitment.CONFIRMED.value)


def _documents(raw: bytes) -> list:
    """One JSON document, or JSON lines of several."""
    try:
        return [orjson.loads(raw)]
    except orjson.JSONDecodeError:
        return [orjson.loads(line) for line in raw.splitlines() if line.strip()]


def run(args: argparse.Namespace) -> int:
    raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    try:
        docs = _documents(raw)
    except orjson.JSONDecodeError as exc:
        print(f"depinflow flows: {args.file} is not JSON: {exc}", file=sys.stderr)
        return 2
    prices = PriceBook.load(args.prices) if args.prices else None
    classifier = Classifier(prices=prices, config=load_config(args.labels))
    out = sys.stdout.buffer
    status = 0
    for doc in docs:
        try:
            tx = parse_response(doc)
        except DecodeError as exc:
            print(f"depinflow flows: cannot parse transaction: {exc}", file=sys.stderr)
            status = 1
            continue
        result = classifier.classify(tx, args.commitment)
        if args.kind == "flows":
            rows = [f.to_dict() for f in result.flows]
        elif args.kind == "instructions":
            rows = result.instructions
        else:
            rows = result.dead_letters
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")
    out.flush()
    return status
