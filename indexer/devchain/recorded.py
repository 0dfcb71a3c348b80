"""Turn a recorded getTransaction result (json, jsonParsed or base64) into a `TxRecord`.

WHY: real fixtures (e.g. the Helium mainnet claim in the reference data) must be served through
the same server as generated transactions, in every encoding a client may ask for. jsonParsed
replaced the raw data of spl-token / system / memo instructions by their parsed form, so those
are re-encoded (spl-token through the registry's encoder) and the message is re-serialized with
the recorded signatures. The signatures therefore belong to the original bytes only if the
re-encoding is exact, which it is for the instruction kinds handled here.
"""

from __future__ import annotations

import base64
import struct

from solders.transaction import VersionedTransaction

from indexer.devchain import accounts as A
from indexer.devchain.txbuild import (
    CompiledIx,
    TokenBal,
    TxRecord,
    b58decode,
    b58encode,
    compact_u16,
    serialize_message,
)


class RecordedFormatError(ValueError):
    pass


def record_from_result(result: dict) -> TxRecord:
    """`result` is the `result` member of a getTransaction response (or that object itself)."""
    if "result" in result and "transaction" not in result:
        result = result["result"]
    tx = result["transaction"]
    meta = result.get("meta") or {}
    if isinstance(tx, list):
        raw = base64.b64decode(tx[0]) if tx[1] == "base64" else b58decode(tx[0])
        return _from_wire(raw, result, meta)
    keys0 = tx["message"]["accountKeys"]
    if keys0 and isinstance(keys0[0], dict):
        return _from_parsed(tx, result, meta)
    return _from_json(tx, result, meta)


# ---------------------------------------------------------------------------------------------


def _token_bals(entries: list[dict]) -> list[TokenBal]:
    out = []
    for e in entries or []:
        ui = e["uiTokenAmount"]
        out.append(TokenBal(e["accountIndex"], e["mint"], e.get("owner") or "", int(ui["amount"]),
                            int(ui["decimals"]), e.get("programId") or A.TOKEN_PROGRAM))
    return out


def _record(result: dict, meta: dict, *, signatures, wire, version, header, static_keys, loaded_w, loaded_r,
            lookups, blockhash, top, inner) -> TxRecord:
    return TxRecord(
        signature=signatures[0], signatures=list(signatures), wire=wire, version=version, header=header,
        static_keys=static_keys, loaded_writable=loaded_w, loaded_readonly=loaded_r, lookups=lookups,
        recent_blockhash=blockhash, instructions=top, inner=inner, err=meta.get("err"),
        fee=int(meta.get("fee", 0)), pre_balances=list(meta.get("preBalances", [])),
        post_balances=list(meta.get("postBalances", [])), logs=list(meta.get("logMessages") or []),
        pre_token=_token_bals(meta.get("preTokenBalances")), post_token=_token_bals(meta.get("postTokenBalances")),
        compute_units=int(meta.get("computeUnitsConsumed") or 0), memo=None,
        slot=int(result.get("slot", 0)), block_time=result.get("blockTime"),
    )


def _lookups(msg: dict) -> list[tuple[str, bytes, bytes]]:
    return [(t["accountKey"], bytes(t["writableIndexes"]), bytes(t["readonlyIndexes"]))
            for t in msg.get("addressTableLookups") or []]


def _wire(signatures: list[str], msg_bytes: bytes) -> bytes:
    return compact_u16(len(signatures)) + b"".join(b58decode(s) for s in signatures) + msg_bytes


def _from_wire(raw: bytes, result: dict, meta: dict) -> TxRecord:
    vtx = VersionedTransaction.from_bytes(raw)
    msg = vtx.message
    version = "legacy" if not hasattr(msg, "address_table_lookups") else 0
    loaded = meta.get("loadedAddresses") or {}
    h = msg.header
    top = [CompiledIx(c.program_id_index, bytes(c.accounts), bytes(c.data)) for c in msg.instructions]
    keys = [str(k) for k in msg.account_keys] + list(loaded.get("writable", [])) + list(loaded.get("readonly", []))
    return _record(
        result, meta, signatures=[str(s) for s in vtx.signatures], wire=raw, version=version,
        header=(h.num_required_signatures, h.num_readonly_signed_accounts, h.num_readonly_unsigned_accounts),
        static_keys=[str(k) for k in msg.account_keys], loaded_w=list(loaded.get("writable", [])),
        loaded_r=list(loaded.get("readonly", [])),
        lookups=[(str(t.account_key), bytes(t.writable_indexes), bytes(t.readonly_indexes))
                 for t in getattr(msg, "address_table_lookups", [])],
        blockhash=str(msg.recent_blockhash), top=top, inner=_inner_json(meta, keys),
    )


def _inner_json(meta: dict, keys: list[str]) -> list[tuple[int, list[CompiledIx]]]:
    return [(g["index"], [CompiledIx(i["programIdIndex"], bytes(i["accounts"]), b58decode(i["data"]),
                                     i.get("stackHeight")) for i in g["instructions"]])
            for g in meta.get("innerInstructions") or []]


def _from_json(tx: dict, result: dict, meta: dict) -> TxRecord:
    msg = tx["message"]
    h = msg["header"]
    header = (h["numRequiredSignatures"], h["numReadonlySignedAccounts"], h["numReadonlyUnsignedAccounts"])
    static = list(msg["accountKeys"])
    loaded = meta.get("loadedAddresses") or {}
    lw, lr = list(loaded.get("writable", [])), list(loaded.get("readonly", []))
    version = result.get("version", 0 if "addressTableLookups" in msg else "legacy")
    top = [CompiledIx(i["programIdIndex"], bytes(i["accounts"]), b58decode(i["data"])) for i in msg["instructions"]]
    lookups = _lookups(msg)
    wire = _wire(tx["signatures"], serialize_message(version, header, static, msg["recentBlockhash"], top, lookups))
    return _record(result, meta, signatures=tx["signatures"], wire=wire, version=version, header=header,
                   static_keys=static, loaded_w=lw, loaded_r=lr, lookups=lookups, blockhash=msg["recentBlockhash"],
                   top=top, inner=_inner_json(meta, static + lw + lr))


# ---------------------------------------------------------------------------------------------
# jsonParsed


def _from_parsed(tx: dict, result: dict, meta: dict) -> TxRecord:
    msg = tx["message"]
    objs = msg["accountKeys"]
    static = [o["pubkey"] for o in objs if o.get("source", "transaction") == "transaction"]
    lw = [o["pubkey"] for o in objs if o.get("source") == "lookupTable" and o["writable"]]
    lr = [o["pubkey"] for o in objs if o.get("source") == "lookupTable" and not o["writable"]]
    st = [o for o in objs if o.get("source", "transaction") == "transaction"]
    header = (sum(1 for o in st if o["signer"]),
              sum(1 for o in st if o["signer"] and not o["writable"]),
              sum(1 for o in st if not o["signer"] and not o["writable"]))
    keys = static + lw + lr
    index = {k: i for i, k in enumerate(keys)}
    lookups = _lookups(msg)
    version = result.get("version", 0 if lookups or "addressTableLookups" in msg else "legacy")
    top = [_compile_parsed(i, index, i.get("stackHeight")) for i in msg["instructions"]]
    inner = [(g["index"], [_compile_parsed(i, index, i.get("stackHeight")) for i in g["instructions"]])
             for g in meta.get("innerInstructions") or []]
    wire = _wire(tx["signatures"], serialize_message(version, header, static, msg["recentBlockhash"], top, lookups))
    return _record(result, meta, signatures=tx["signatures"], wire=wire, version=version, header=header,
                   static_keys=static, loaded_w=lw, loaded_r=lr, lookups=lookups, blockhash=msg["recentBlockhash"],
                   top=top, inner=inner)


def _compile_parsed(ix: dict, index: dict[str, int], stack_height) -> CompiledIx:
    program = ix["programId"]
    if "parsed" not in ix:
        return CompiledIx(index[program], bytes(index[a] for a in ix["accounts"]), b58decode(ix["data"]),
                          stack_height)
    accounts, data = _unparse(program, ix.get("program"), ix["parsed"])
    return CompiledIx(index[program], bytes(index[a] for a in accounts), data, stack_height)


def _unparse(program: str, program_name: str | None, parsed) -> tuple[list[str], bytes]:
    """The raw (accounts, data) behind a jsonParsed instruction."""
    if program in (A.TOKEN_PROGRAM, A.TOKEN_2022_PROGRAM):
        from indexer.decode.spl_token import decode_parsed_token
        from indexer.devchain.programs import registry

        d = decode_parsed_token(program, parsed)
        accounts: list[str] = []
        for v in d.accounts.values():
            accounts.extend(v if isinstance(v, list) else [v])
        accounts.extend(d.extra_accounts)
        return accounts, registry().encode(program, d.name, d.args)
    if program == A.SYSTEM_PROGRAM and parsed.get("type") == "transfer":
        info = parsed["info"]
        return [info["source"], info["destination"]], struct.pack("<IQ", 2, int(info["lamports"]))
    if program in (A.MEMO_PROGRAM, A.MEMO_PROGRAM_V1) and isinstance(parsed, str):
        return [], parsed.encode()
    if program == A.ATA_PROGRAM and parsed.get("type") in ("create", "createIdempotent"):
        info = parsed["info"]
        accounts = [info["source"], info["account"], info["wallet"], info["mint"], info["systemProgram"],
                    info["tokenProgram"]]
        return accounts, b"" if parsed["type"] == "create" else b"\x01"
    raise RecordedFormatError(f"cannot re-encode parsed {program_name or program} instruction "
                              f"{str(parsed)[:80]}")


def roundtrip_signature_ok(rec: TxRecord) -> bool:
    """True when the rebuilt message verifies against the recorded first signature."""
    from solders.signature import Signature

    vtx = VersionedTransaction.from_bytes(rec.wire)
    from solders.message import to_bytes_versioned

    return Signature.from_string(rec.signature).verify(vtx.message.account_keys[0], to_bytes_versioned(vtx.message)) \
        and b58encode(bytes(vtx.signatures[0])) == rec.signature
