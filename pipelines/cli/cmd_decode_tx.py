"""`depinflow decode-tx FILE`: a getTransaction JSON (response or result) -> decoded instruction tree.

Prints one JSON line per instruction, depth-first in execution order:
{"path", "stack_height", "program_id", "program", "instruction", "args", "accounts",
"extra_accounts"} or, when it cannot be decoded, {"path", "stack_height", "program_id",
"program", "error", "data_hex"}. Instructions the RPC returned pre-parsed (jsonParsed
system/token...) are printed with their parsed form; spl-token ones are also decoded.
The account layout is chosen by the transaction's slot.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from indexer.decode.canonical import dumps
from indexer.decode.errors import DecodeError
from indexer.decode.registry import ProgramRegistry, default_registry
from indexer.decode.spl_token import PROGRAM_NAMES as TOKEN_PROGRAMS
from indexer.decode.spl_token import decode_parsed_token
from indexer.decode.txparse import parse_response


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="getTransaction JSON file ('-' for stdin)")


def decode_tree(tx, registry: ProgramRegistry | None = None) -> list[dict]:
    """The decode-tx lines for a parsed Transaction."""
    reg = registry or default_registry()
    lines = []
    for ix in tx.walk():
        row = {"path": ix.path, "stack_height": ix.stack_height, "program_id": ix.program_id,
               "program": reg.program_name(ix.program_id) or ix.program_name}
        try:
            if ix.data is None:
                if ix.program_id in TOKEN_PROGRAMS and ix.parsed and ix.parsed.get("type"):
                    d = decode_parsed_token(ix.program_id, ix.parsed)
                else:
                    row["parsed"] = ix.parsed
                    lines.append(row)
                    continue
            else:
                d = reg.decode(ix.program_id, ix.data, ix.accounts, tx.slot)
        except DecodeError as e:
            row["error"] = str(e)
            row["reason"] = e.reason
            if ix.data is not None:
                row["data_hex"] = ix.data.hex()
            lines.append(row)
            continue
        row.update(program=d.program, instruction=d.name, args=d.args, accounts=d.accounts,
                   extra_accounts=d.extra_accounts)
        lines.append(row)
    return lines


def run(args: argparse.Namespace) -> int:
    raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    try:
        tx = parse_response(raw)
    except DecodeError as e:
        sys.stdout.write(dumps({"error": str(e), "reason": e.reason}) + "\n")
        return 1
    out = sys.stdout
    for row in decode_tree(tx):
        out.write(dumps(row) + "\n")
    return 0
