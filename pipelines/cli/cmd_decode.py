"""`depinflow decode-ix --idl FILE --data HEX [--batch]`: decode Anchor instruction data with an IDL.

Also the hook for checking the decoder against independent implementations: `--batch`
reads JSON lines {"idl": PATH, "data_hex": HEX} on stdin and answers one JSON object per line,
{"instruction": <name as in the IDL>, "args": {...}} or {"error": "<reason>: <detail>"},
in the canonical rendering of indexer.decode.canonical.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from indexer.decode.anchor_idl import CompiledIdl, IdlError
from indexer.decode.canonical import dumps
from indexer.decode.errors import DecodeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idl", help="Anchor IDL JSON file (0.30+ or legacy spec)")
    parser.add_argument("--data", help="instruction data as hex (discriminator included)")
    parser.add_argument("--batch", action="store_true",
                        help='read JSON lines {"idl": PATH, "data_hex": HEX} on stdin, write one result per line')


class _IdlCache:
    """Compile each IDL file once per process (batch mode decodes thousands against a few IDLs)."""

    def __init__(self) -> None:
        self._by_path: dict[str, CompiledIdl | Exception] = {}

    def get(self, path: str) -> CompiledIdl:
        hit = self._by_path.get(path)
        if hit is None:
            try:
                hit = CompiledIdl(json.loads(Path(path).read_text()))
            except (OSError, ValueError, KeyError, TypeError, IdlError) as e:
                hit = e
            self._by_path[path] = hit
        if isinstance(hit, Exception):
            raise hit
        return hit


def decode_one(cache: _IdlCache, idl_path: str, data_hex: str) -> dict:
    """The CLI's answer object for one (IDL, hex) pair."""
    try:
        compiled = cache.get(idl_path)
    except (OSError, ValueError, KeyError, TypeError, IdlError) as e:
        return {"error": f"bad_idl: {e}"}
    try:
        data = bytes.fromhex(data_hex.strip().removeprefix("0x"))
    except (ValueError, AttributeError):
        return {"error": "bad_hex: data is not hex"}
    try:
        ix, args = compiled.decode(data)
    except DecodeError as e:
        return {"error": str(e)}
    return {"instruction": ix.name, "args": args}


def run(args: argparse.Namespace) -> int:
    cache = _IdlCache()
    out = sys.stdout
    if args.batch:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                req = json.loads(line)
                result = decode_one(cache, req["idl"], req["data_hex"])
            except (ValueError, KeyError, TypeError) as e:
                result = {"error": f"bad_request: {e}"}
            out.write(dumps(result) + "\n")
        out.flush()
        return 0
    if not args.idl or args.data is None:
        sys.stderr.write("decode-ix: --idl and --data are required (or use --batch)\n")
        return 2
    result = decode_one(cache, args.idl, args.data)
    out.write(dumps(result) + "\n")
    return 1 if "error" in result else 0
