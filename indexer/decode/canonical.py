"""Canonical JSON rendering of decoded values (CLI output, cross-implementation checks).

Rules: integers of any width are JSON numbers with full precision (orjson stops at 64 bits,
so wider values fall back to the stdlib encoder, which writes Python ints exactly); bytes are
lowercase hex; None is null; dict keys keep their (IDL) order.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    raise TypeError(f"not JSON-serializable: {type(obj).__name__}")


def _plain(obj: Any) -> Any:
    """Deep-convert for the stdlib fallback (bytes -> hex)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    return obj


def dumps(obj: Any) -> str:
    """One-line canonical JSON text."""
    try:
        return orjson.dumps(obj, default=_default).decode()
    except (orjson.JSONEncodeError, TypeError):
        # Integers beyond 64 bits (u128/i128/u256): the stdlib encoder writes them exactly.
        return json.dumps(_plain(obj), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
