"""Render a `TxRecord` into the exact JSON shapes the Solana RPC returns.

Shapes follow Agave's `solana-transaction-status` UI types: `json` (raw message, base58
instruction data, loadedAddresses in meta), `jsonParsed` (account objects with source, parsed
spl-token / system / memo instructions, no loadedAddresses), `base64` / `base58` (wire bytes).
`version` is only present when the caller sent maxSupportedTransactionVersion (as the RPC does).
"""

from __future__ import annotations

import base64

from indexer.devchain import accounts as A
from indexer.devchain.txbuild import CompiledIx, TokenBal, TxRecord, b58encode

ENCODINGS = ("json", "jsonParsed", "base64", "base58")


def _ui_amount(amount: int, decimals: int) -> dict:
    if decimals:
        q, r = divmod(amount, 10**decimals)
        s = f"{q}.{r:0{decimals}d}".rstrip("0").rstrip(".") if r else str(q)
    else:
        s = str(amount)
    # the RPC prints uiAmount null for a zero balance
    return {"amount": str(amount), "decimals": decimals, "uiAmount": float(s) if amount else None,
            "uiAmountString": s}


def _token_balance(b: TokenBal) -> dict:
    return {
        "accountIndex": b.account_index,
        "mint": b.mint,
        "owner": b.owner,
        "programId": b.program_id,
        "uiTokenAmount": _ui_amount(b.amount, b.decimals),
    }


def _status(err) -> dict:
    return {"Ok": None} if err is None else {"Err": err}


def _meta_common(rec: TxRecord) -> dict:
    return {
        "err": rec.err,
        "status": _status(rec.err),
        "fee": rec.fee,
        "preBalances": rec.pre_balances,
        "postBalances": rec.post_balances,
        "logMessages": rec.logs,
        "preTokenBalances": [_token_balance(b) for b in rec.pre_token],
        "postTokenBalances": [_token_balance(b) for b in rec.post_token],
        "rewards": [],
        "computeUnitsConsumed": rec.compute_units,
    }


# ---------------------------------------------------------------------------------------------
# json (raw)


def _raw_ix(c: CompiledIx) -> dict:
    return {"programIdIndex": c.program_index, "accounts": list(c.accounts), "data": b58encode(c.data),
            "stackHeight": c.stack_height}


def _raw_message(rec: TxRecord) -> dict:
    msg = {
        "header": {
            "numRequiredSignatures": rec.header[0],
            "numReadonlySignedAccounts": rec.header[1],
            "numReadonlyUnsignedAccounts": rec.header[2],
        },
        "accountKeys": rec.static_keys,
        "recentBlockhash": rec.recent_blockhash,
        "instructions": [_raw_ix(c) for c in rec.instructions],
    }
    if rec.version != "legacy":
        msg["addressTableLookups"] = [
            {"accountKey": t, "writableIndexes": list(w), "readonlyIndexes": list(r)} for t, w, r in rec.lookups
        ]
    return msg


def _meta_json(rec: TxRecord) -> dict:
    m = _meta_common(rec)
    m["innerInstructions"] = [{"index": i, "instructions": [_raw_ix(c) for c in cs]} for i, cs in rec.inner]
    m["loadedAddresses"] = {"writable": rec.loaded_writable, "readonly": rec.loaded_readonly}
    return m


# ---------------------------------------------------------------------------------------------
# jsonParsed


_TOKEN_NAMES = {3: "transfer", 7: "mintTo", 8: "burn", 12: "transferChecked", 14: "mintToChecked",
                15: "burnChecked"}


def _parse_token(accts: list[str], data: bytes) -> dict | None:
    if not data or data[0] not in _TOKEN_NAMES or len(data) < 9:
        return None
    tag = data[0]
    amount = int.from_bytes(data[1:9], "little")
    kind = _TOKEN_NAMES[tag]
    try:
        if tag == 3:
            info = {"source": accts[0], "destination": accts[1], "authority": accts[2], "amount": str(amount)}
        elif tag == 7:
            info = {"mint": accts[0], "account": accts[1], "mintAuthority": accts[2], "amount": str(amount)}
        elif tag == 8:
            info = {"account": accts[0], "mint": accts[1], "authority": accts[2], "amount": str(amount)}
        elif tag == 12:
            info = {"source": accts[0], "mint": accts[1], "destination": accts[2], "authority": accts[3],
                    "tokenAmount": _ui_amount(amount, data[9])}
        elif tag == 14:
            info = {"mint": accts[0], "account": accts[1], "mintAuthority": accts[2],
                    "tokenAmount": _ui_amount(amount, data[9])}
        else:
            info = {"account": accts[0], "mint": accts[1], "authority": accts[2],
                    "tokenAmount": _ui_amount(amount, data[9])}
    except IndexError:
        return None
    return {"type": kind, "info": info}


def _parsed_ix(program: str, accts: list[str], data: bytes, stack_height: int | None) -> dict:
    if program == A.TOKEN_PROGRAM:
        p = _parse_token(accts, data)
        if p is not None:
            return {"program": "spl-token", "programId": program, "parsed": p, "stackHeight": stack_height}
    elif program == A.SYSTEM_PROGRAM and len(data) == 12 and data[:4] == b"\x02\0\0\0":
        info = {"source": accts[0], "destination": accts[1], "lamports": int.from_bytes(data[4:], "little")}
        return {"program": "system", "programId": program, "parsed": {"type": "transfer", "info": info},
                "stackHeight": stack_height}
    elif program in (A.MEMO_PROGRAM, A.MEMO_PROGRAM_V1):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            return {"program": "spl-memo", "programId": program, "parsed": text, "stackHeight": stack_height}
    return {"programId": program, "accounts": accts, "data": b58encode(data), "stackHeight": stack_height}


def _parsed_ixs(rec: TxRecord, keys: list[str], cs: list[CompiledIx]) -> list[dict]:
    return [_parsed_ix(keys[c.program_index], [keys[i] for i in c.accounts], c.data, c.stack_height) for c in cs]


def _parsed_message(rec: TxRecord) -> dict:
    keys = rec.account_keys
    n_static = len(rec.static_keys)
    account_objs = [
        {"pubkey": k, "writable": rec.is_writable(i), "signer": rec.is_signer(i),
         "source": "transaction" if i < n_static else "lookupTable"}
        for i, k in enumerate(keys)
    ]
    msg = {"accountKeys": account_objs, "recentBlockhash": rec.recent_blockhash,
           "instructions": _parsed_ixs(rec, keys, rec.instructions)}
    if rec.version != "legacy":
        msg["addressTableLookups"] = [
            {"accountKey": t, "writableIndexes": list(w), "readonlyIndexes": list(r)} for t, w, r in rec.lookups
        ]
    return msg


def _meta_parsed(rec: TxRecord) -> dict:
    keys = rec.account_keys
    m = _meta_common(rec)
    m["innerInstructions"] = [{"index": i, "instructions": _parsed_ixs(rec, keys, cs)} for i, cs in rec.inner]
    return m


# ---------------------------------------------------------------------------------------------
# public API


def transaction_with_meta(rec: TxRecord, encoding: str, with_version: bool) -> dict:
    """The `{transaction, meta[, version]}` object used by getBlock entries (no slot/blockTime)."""
    if encoding == "json":
        tx = {"signatures": rec.signatures, "message": _raw_message(rec)}
        meta = _meta_json(rec)
    elif encoding == "jsonParsed":
        tx = {"signatures": rec.signatures, "message": _parsed_message(rec)}
        meta = _meta_parsed(rec)
    elif encoding == "base64":
        tx = [base64.b64encode(rec.wire).decode(), "base64"]
        meta = _meta_json(rec)
    elif encoding == "base58":
        tx = [b58encode(rec.wire), "base58"]
        meta = _meta_json(rec)
    else:
        raise ValueError(encoding)
    out = {"transaction": tx, "meta": meta}
    if with_version:
        out["version"] = rec.version
    return out


def get_transaction_result(rec: TxRecord, encoding: str, with_version: bool) -> dict:
    out = {"slot": rec.slot, "blockTime": rec.block_time}
    out.update(transaction_with_meta(rec, encoding, with_version))
    return out


def accounts_only(rec: TxRecord, with_version: bool) -> dict:
    """transactionDetails=accounts: signatures + account list with flags, reduced meta."""
    keys = rec.account_keys
    n_static = len(rec.static_keys)
    out = {
        "transaction": {
            "signatures": rec.signatures,
            "accountKeys": [
                {"pubkey": k, "writable": rec.is_writable(i), "signer": rec.is_signer(i),
                 "source": "transaction" if i < n_static else "lookupTable"}
                for i, k in enumerate(keys)
            ],
        },
        "meta": {
            "err": rec.err, "status": _status(rec.err), "fee": rec.fee,
            "preBalances": rec.pre_balances, "postBalances": rec.post_balances,
            "preTokenBalances": [_token_balance(b) for b in rec.pre_token],
            "postTokenBalances": [_token_balance(b) for b in rec.post_token],
        },
    }
    if with_version:
        out["version"] = rec.version
    return out
