"""Re-encode a jsonParsed getTransaction result into the `json` and `base64` encodings.

Why: the RPC serves the same transaction in three encodings and the parser must give the
same tree for all of them; real data exists mostly in jsonParsed form. This rebuilds the wire
transaction with solders, replacing the RPC's parsed instructions (spl-token, system transfer)
with raw bytes from the project's own encoders, so tests, the benchmark and the chain simulator
can serve any transaction in any encoding.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from solders.hash import Hash
from solders.instruction import CompiledInstruction
from solders.message import Message, MessageAddressTableLookup, MessageHeader, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from indexer.decode.base58 import b58decode as _b58
from indexer.decode.base58 import b58encode
from indexer.decode.spl_token import (
    _SPEC,
    _TRANSFER_CHECKED_WITH_FEE,
    decode_parsed_token,
    encode_token_instruction,
)
from indexer.decode.spl_token import PROGRAM_NAMES as TOKEN_PROGRAMS

SYSTEM_PROGRAM_ID = "11111111111111111111111111111111"


def _token_accounts_in_order(program_id: str, parsed: dict) -> tuple[bytes, list[str]]:
    d = decode_parsed_token(program_id, parsed)
    spec = next((s for s in _SPEC.values() if s[0] == d.name), None)
    if spec is None and d.name == _TRANSFER_CHECKED_WITH_FEE[0]:
        spec = _TRANSFER_CHECKED_WITH_FEE
    if spec is None:
        raise ValueError(f"cannot re-encode token instruction {d.name!r}")
    accounts = [d.accounts[n] for n in spec[2] if n in d.accounts]
    signers = d.accounts.get("signers") if isinstance(d.accounts.get("signers"), list) else d.extra_accounts
    return encode_token_instruction(program_id, d.name, d.args), accounts + list(signers or [])


def raw_from_parsed(ix: dict) -> tuple[bytes, list[str]]:
    """(data, account pubkeys) for a jsonParsed instruction the RPC returned pre-parsed."""
    pid = ix["programId"]
    parsed = ix["parsed"]
    if pid in TOKEN_PROGRAMS:
        return _token_accounts_in_order(pid, parsed)
    if pid == SYSTEM_PROGRAM_ID and parsed.get("type") == "transfer":
        info = parsed["info"]
        return struct.pack("<IQ", 2, int(info["lamports"])), [info["source"], info["destination"]]
    raise ValueError(f"cannot re-encode parsed instruction of {pid} ({parsed.get('type')!r})")


def _compiled(ix: dict, index: dict[str, int]) -> dict:
    if "parsed" in ix:
        data, accounts = raw_from_parsed(ix)
    else:
        data, accounts = _b58(ix["data"]), ix["accounts"]
    out = {"programIdIndex": index[ix["programId"]], "accounts": [index[a] for a in accounts],
           "data": b58encode(data)}
    if "stackHeight" in ix:
        out["stackHeight"] = ix["stackHeight"]
    return out


def _header(static: list[dict]) -> tuple[int, int, int]:
    """Header counts from jsonParsed flags; the static keys must be in header order."""
    rank = [(0 if k["signer"] else 2) + (0 if k["writable"] else 1) for k in static]
    if rank != sorted(rank):
        raise ValueError("static account keys are not in message-header order (demoted writable flags?)")
    nsig = sum(1 for k in static if k["signer"])
    ro_signed = sum(1 for k in static if k["signer"] and not k["writable"])
    ro_unsigned = sum(1 for k in static if not k["signer"] and not k["writable"])
    return nsig, ro_signed, ro_unsigned


def to_encoding(result: dict, encoding: str) -> dict:
    """A jsonParsed getTransaction result re-encoded as `json` or `base64` (same signature, meta)."""
    if encoding not in ("json", "base64"):
        raise ValueError(encoding)
    tx = result["transaction"]
    msg = tx["message"]
    keys = msg["accountKeys"]
    static = [k for k in keys if k.get("source", "transaction") == "transaction"]
    loaded_w = [k["pubkey"] for k in keys if k.get("source") == "lookupTable" and k["writable"]]
    loaded_r = [k["pubkey"] for k in keys if k.get("source") == "lookupTable" and not k["writable"]]
    order = [k["pubkey"] for k in static] + loaded_w + loaded_r
    index = {k: i for i, k in enumerate(order)}
    nsig, ro_signed, ro_unsigned = _header(static)
    top = [_compiled(ix, index) for ix in msg["instructions"]]
    meta = dict(result.get("meta") or {})
    if meta.get("innerInstructions"):
        meta["innerInstructions"] = [
            {"index": g["index"], "instructions": [_compiled(ix, index) for ix in g["instructions"]]}
            for g in meta["innerInstructions"]
        ]
    lookups = msg.get("addressTableLookups")
    is_v0 = lookups is not None or bool(loaded_w or loaded_r)
    if is_v0:
        meta["loadedAddresses"] = {"writable": loaded_w, "readonly": loaded_r}
    header = {"numRequiredSignatures": nsig, "numReadonlySignedAccounts": ro_signed,
              "numReadonlyUnsignedAccounts": ro_unsigned}
    out: dict[str, Any] = {k: v for k, v in result.items() if k not in ("transaction", "meta")}
    out["meta"] = meta
    out["version"] = 0 if is_v0 else "legacy"
    if encoding == "json":
        m = {"accountKeys": [k["pubkey"] for k in static], "header": header,
             "recentBlockhash": msg["recentBlockhash"], "instructions": top}
        if is_v0:
            m["addressTableLookups"] = lookups or []
        out["transaction"] = {"signatures": list(tx["signatures"]), "message": m}
        return out
    cis = [CompiledInstruction(ix["programIdIndex"], _b58(ix["data"]), bytes(ix["accounts"])) for ix in top]
    hdr = MessageHeader(nsig, ro_signed, ro_unsigned)
    static_pk = [Pubkey.from_string(k["pubkey"]) for k in static]
    bh = Hash.from_string(msg["recentBlockhash"])
    if is_v0:
        lk = [MessageAddressTableLookup(Pubkey.from_string(t["accountKey"]), bytes(t["writableIndexes"]),
                                        bytes(t["readonlyIndexes"])) for t in (lookups or [])]
        message = MessageV0(hdr, static_pk, bh, cis, lk)
    else:
        message = Message.new_with_compiled_instructions(nsig, ro_signed, ro_unsigned, static_pk, bh, cis)
    vtx = VersionedTransaction.populate(message, [Signature.from_string(s) for s in tx["signatures"]])
    out["transaction"] = [base64.b64encode(bytes(vtx)).decode(), "base64"]
    return out
