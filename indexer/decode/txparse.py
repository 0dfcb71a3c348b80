"""getTransaction / getBlock results -> indexer.decode.model.Transaction.

Handles the three RPC encodings (`base64` wire bytes, `json` with base58 data and account
indices, `jsonParsed` with pubkeys and parsed system/token instructions) and both message
versions (legacy, v0 with address lookup tables). The result obeys model.py's contract:
account_keys = static keys + meta.loadedAddresses.writable + .readonly; instructions form a
tree placed by stackHeight with paths "3", "3.1", "3.1.2".

Speed: base64 messages are decoded by solders (Rust); base58 is rendered once per account key
and instruction accounts are resolved by index into that one list of strings, so a key that
appears in 20 instructions is rendered once.
"""

from __future__ import annotations

import base64
import binascii

import orjson
from solders.message import MessageV0
from solders.transaction import VersionedTransaction

from indexer.decode.base58 import b58decode
from indexer.decode.errors import DecodeError
from indexer.decode.model import Instruction, TokenBalance, Transaction

_from_bytes = VersionedTransaction.from_bytes
_b64decode = base64.b64decode
_EMPTY_LIST: list = []


def parse_response(raw: bytes | str | dict) -> Transaction:
    """A full JSON-RPC response ({"jsonrpc", "result", ...}) or a bare result -> Transaction."""
    obj = orjson.loads(raw) if isinstance(raw, bytes | bytearray | memoryview | str) else raw
    if not isinstance(obj, dict):
        raise DecodeError("malformed_transaction", "response is not a JSON object")
    if "jsonrpc" in obj or "error" in obj or ("result" in obj and "transaction" not in obj):
        if obj.get("error") is not None:
            raise DecodeError("rpc_error", f"JSON-RPC error: {orjson.dumps(obj['error']).decode()[:300]}")
        result = obj.get("result")
        if result is None:
            raise DecodeError("rpc_error", "null result (transaction not found or not yet confirmed)")
        return parse_transaction(result)
    return parse_transaction(obj)


def parse_transaction(result: dict, signature: str | None = None) -> Transaction:
    """One getTransaction result (or a getBlock transaction element carrying slot/blockTime)."""
    try:
        return _parse(result, result.get("slot"), result.get("blockTime"), signature)
    except DecodeError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, binascii.Error) as e:
        raise DecodeError("malformed_transaction", f"{type(e).__name__}: {e}") from None


def parse_block(result: dict, slot: int) -> list[Transaction]:
    """Every transaction of a getBlock result (transactionDetails "full"), in block order."""
    block_time = result.get("blockTime")
    out = []
    for i, item in enumerate(result.get("transactions") or ()):
        try:
            out.append(_parse(item, slot, block_time, None))
        except DecodeError as e:
            e.detail = f"block {slot} transaction #{i}: {e.detail}"
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, binascii.Error) as e:
            raise DecodeError("malformed_transaction",
                              f"block {slot} transaction #{i}: {type(e).__name__}: {e}") from None
    return out


# --------------------------------------------------------------------------- internals


def _parse(item: dict, slot, block_time, signature: str | None) -> Transaction:
    tx = item["transaction"]
    meta = item.get("meta") or {}
    if isinstance(tx, list):  # [data, encoding]
        data, encoding = tx[0], tx[1] if len(tx) > 1 else "base58"
        raw = _b64decode(data, validate=True) if encoding == "base64" else b58decode(data)
        return _from_wire(raw, item, meta, slot, block_time, signature)
    if isinstance(tx, str):  # legacy "binary" = base58
        return _from_wire(b58decode(tx), item, meta, slot, block_time, signature)
    return _from_json(tx, item, meta, slot, block_time, signature)


def _loaded(meta: dict) -> tuple[list[str], list[str]]:
    la = meta.get("loadedAddresses")
    if not la:
        return _EMPTY_LIST, _EMPTY_LIST
    return la.get("writable") or _EMPTY_LIST, la.get("readonly") or _EMPTY_LIST


def _from_wire(raw: bytes, item: dict, meta: dict, slot, block_time, signature) -> Transaction:
    try:
        vtx = _from_bytes(raw)
    except Exception as e:  # solders raises its own error types for bad wire bytes
        raise DecodeError("malformed_transaction", f"transaction bytes do not parse: {e}") from None
    msg = vtx.message
    keys = [str(k) for k in msg.account_keys]
    n_static = len(keys)
    lw, lr = _loaded(meta)
    if lw or lr:
        keys += lw
        keys += lr
    h = msg.header
    nsig = h.num_required_signatures
    writable = _writable_flags(n_static, nsig, h.num_readonly_signed_accounts,
                               h.num_readonly_unsigned_accounts, len(lw), len(lr))
    version = 0 if isinstance(msg, MessageV0) else "legacy"
    tops = []
    for i, ci in enumerate(msg.instructions):
        tops.append(Instruction(str(i), keys[ci.program_id_index], [keys[a] for a in bytes(ci.accounts)],
                                bytes(ci.data), 1))
    _attach_inner(tops, meta, keys, parsed_form=False)
    sig = signature or str(vtx.signatures[0])
    return _transaction(sig, item, meta, slot, block_time, version, keys, nsig, writable, tops)


def _writable_flags(n_static: int, nsig: int, ro_signed: int, ro_unsigned: int, n_lw: int, n_lr: int) -> list[bool]:
    """Message header rule: writable signers, readonly signers, writable unsigned, readonly unsigned."""
    flags = [True] * (nsig - ro_signed) + [False] * ro_signed
    flags += [True] * (n_static - nsig - ro_unsigned) + [False] * ro_unsigned
    if n_lw or n_lr:
        flags += [True] * n_lw + [False] * n_lr
    return flags


def _from_json(tx: dict, item: dict, meta: dict, slot, block_time, signature) -> Transaction:
    msg = tx["message"]
    ak = msg["accountKeys"]
    parsed_keys = bool(ak) and isinstance(ak[0], dict)
    if parsed_keys:
        # jsonParsed: keys already include lookup-table addresses, with per-key flags.
        keys = [k["pubkey"] for k in ak]
        writable = [bool(k.get("writable")) for k in ak]
        nsig = sum(1 for k in ak if k.get("signer"))
        if not any(k.get("source") == "lookupTable" for k in ak):
            lw, lr = _loaded(meta)
            if lw or lr:
                keys += lw
                keys += lr
                writable += [True] * len(lw) + [False] * len(lr)
    else:
        keys = list(ak)
        h = msg["header"]
        nsig = h["numRequiredSignatures"]
        lw, lr = _loaded(meta)
        n_static = len(keys)
        if lw or lr:
            keys += lw
            keys += lr
        writable = _writable_flags(n_static, nsig, h["numReadonlySignedAccounts"],
                                   h["numReadonlyUnsignedAccounts"], len(lw), len(lr))
    version = item.get("version", "legacy" if not msg.get("addressTableLookups") else 0)
    if version is None:
        version = "legacy"
    tops = [_json_ix(ix, keys, str(i), 1) for i, ix in enumerate(msg["instructions"])]
    _attach_inner(tops, meta, keys, parsed_form=True)
    sig = signature or tx["signatures"][0]
    return _transaction(sig, item, meta, slot, block_time, version, keys, nsig, writable, tops)


def _json_ix(ix: dict, keys: list[str], path: str, height: int) -> Instruction:
    """One instruction in `json` (indices) or `jsonParsed` (pubkeys / parsed) form."""
    pid_index = ix.get("programIdIndex")
    if pid_index is not None:  # json encoding
        return Instruction(path, keys[pid_index], [keys[a] for a in ix["accounts"]],
                           b58decode(ix["data"]), height)
    if "parsed" in ix:
        parsed = ix["parsed"]
        if not isinstance(parsed, dict):  # e.g. memo: the RPC gives a bare string
            parsed = {"type": None, "info": parsed}
        return Instruction(path, ix["programId"], _parsed_accounts(parsed), None, height, parsed, ix.get("program"))
    return Instruction(path, ix["programId"], list(ix["accounts"]), b58decode(ix["data"]), height)


def _parsed_accounts(parsed: dict) -> list[str]:
    """Accounts named in a parsed instruction's info (its raw account list is not returned by the RPC)."""
    info = parsed.get("info")
    if not isinstance(info, dict):
        return []
    out = []
    for v in info.values():
        if isinstance(v, str) and 32 <= len(v) <= 44:
            out.append(v)
    return out


def _attach_inner(tops: list[Instruction], meta: dict, keys: list[str], parsed_form: bool) -> None:
    """Place meta.innerInstructions under their parents using stackHeight.

    The parent of an inner instruction at height h is the nearest preceding instruction of
    height h-1 in the same group (the top-level one for h=2). Without stackHeight (old
    transactions), every inner instruction is a direct child of the top-level instruction.
    """
    groups = meta.get("innerInstructions")
    if not groups:
        return
    for group in groups:
        top = tops[group["index"]]
        stack = [top]  # stack[k] = latest instruction at height k+1
        for ix in group["instructions"]:
            sh = ix.get("stackHeight")
            if sh is None or sh < 2:
                h = 2
                parent = top
            else:
                h = sh if sh - 1 <= len(stack) else len(stack) + 1  # gap: deepest known parent
                parent = stack[h - 2]
            child = _json_ix(ix, keys, f"{parent.path}.{len(parent.children) + 1}", sh or 2)
            parent.children.append(child)
            del stack[h - 1:]
            stack.append(child)


def _balances(items, keys: list[str]) -> list[TokenBalance]:
    if not items:
        return []
    out = []
    for b in items:
        ui = b["uiTokenAmount"]
        idx = b["accountIndex"]
        out.append(TokenBalance(idx, keys[idx], b["mint"], b.get("owner"), int(ui["amount"]),
                                ui["decimals"], b.get("programId")))
    return out


def _transaction(sig, item, meta, slot, block_time, version, keys, nsig, writable, tops) -> Transaction:
    if slot is None:
        raise DecodeError("malformed_transaction", "no slot in the result")
    return Transaction(
        signature=sig,
        slot=slot,
        block_time=block_time if block_time is not None else item.get("blockTime"),
        fee=meta.get("fee", 0),
        err=meta.get("err"),
        version=version,
        account_keys=keys,
        num_signers=nsig,
        writable=writable,
        instructions=tops,
        log_messages=meta.get("logMessages") or [],
        pre_token_balances=_balances(meta.get("preTokenBalances"), keys),
        post_token_balances=_balances(meta.get("postTokenBalances"), keys),
    )
