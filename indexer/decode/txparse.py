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

import binascii
import re

import orjson
from solders.message import MessageV0
from solders.transaction import VersionedTransaction

from indexer.decode.base58 import b58decode
from indexer.decode.errors import DecodeError
from indexer.decode.model import Instruction, TokenBalance, Transaction

_from_bytes = VersionedTransaction.from_bytes
_a2b_base64 = binascii.a2b_base64
_new = object.__new__
_EMPTY_LIST: list = []

# Bounded memo caches. An indexer sees the same program ids, mints, DAO accounts and LUT entries
# in almost every transaction, and CPI data strings repeat (same instruction, same amount), so
# rendering/decoding each distinct value once saves most of the base58 work. Cleared when full.
_CACHE_MAX = 1 << 18
_KEY_STR: dict = {}
_B58_DATA: dict[str, bytes] = {}


def clear_caches() -> None:
    """Forget memoized base58 renderings (benchmarks use this to measure the cold path)."""
    _KEY_STR.clear()
    _B58_DATA.clear()
    _PUBKEYS_SEEN.clear()


def _key_strs(pubkeys) -> list[str]:
    """Base58 of solders Pubkeys, each distinct key rendered once."""
    cache = _KEY_STR
    get = cache.get
    out = []
    for k in pubkeys:
        s = get(k)
        if s is None:
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            s = cache[k] = str(k)
        out.append(s)
    return out


def _data(text: str) -> bytes:
    """Instruction data from base58, memoized for short (CPI-sized) strings."""
    raw = _B58_DATA.get(text)
    if raw is None:
        raw = b58decode(text)
        if len(text) <= 128:
            if len(_B58_DATA) >= _CACHE_MAX:
                _B58_DATA.clear()
            _B58_DATA[text] = raw
    return raw


def _mk(path: str, program_id: str, accounts: list[str], data: bytes | None, height: int,
        parsed: dict | None = None, program_name: str | None = None) -> Instruction:
    """Instruction without the dataclass __init__ (object.__new__ + slot stores: ~2x cheaper)."""
    ix = _new(Instruction)
    ix.path = path
    ix.program_id = program_id
    ix.accounts = accounts
    ix.data = data
    ix.stack_height = height
    ix.parsed = parsed
    ix.program_name = program_name
    ix.children = []
    return ix


def parse_response(raw: bytes | str | dict) -> Transaction:
    """A full JSON-RPC response ({"jsonrpc", "result", ...}) or a bare result -> Transaction."""
    if isinstance(raw, bytes | bytearray | memoryview | str):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise DecodeError("malformed_transaction", f"response is not JSON: {e}") from None
    else:
        obj = raw
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
        raw = _a2b_base64(data) if encoding == "base64" else b58decode(data)
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
    keys = _key_strs(msg.account_keys)
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
        tops.append(_mk(str(i), keys[ci.program_id_index], [keys[a] for a in bytes(ci.accounts)],
                        bytes(ci.data), 1))
    by_index = _attach_inner(tops, meta, keys, parsed_form=False)
    sig = signature or str(vtx.signatures[0])
    return _transaction(sig, item, meta, slot, block_time, version, keys, nsig, writable, tops, by_index)


def _writable_flags(n_static: int, nsig: int, ro_signed: int, ro_unsigned: int, n_lw: int, n_lr: int) -> list[bool]:
    """Message header rule: writable signers, readonly signers, writable unsigned, readonly unsigned."""
    # Checked first: a corrupt header count (2**31) would otherwise allocate a list of that size.
    if (type(nsig) is not int or type(ro_signed) is not int or type(ro_unsigned) is not int
            or not 0 <= ro_signed <= nsig <= n_static or not 0 <= ro_unsigned <= n_static - nsig):
        raise DecodeError("malformed_transaction", f"message header ({nsig}, {ro_signed}, {ro_unsigned}) "
                          f"does not fit {n_static} account keys")
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
    by_index = _attach_inner(tops, meta, keys, parsed_form=True) and not parsed_keys and all(
        "programIdIndex" in ix for ix in msg["instructions"])
    sig = signature or tx["signatures"][0]
    return _transaction(sig, item, meta, slot, block_time, version, keys, nsig, writable, tops, by_index)


def _json_ix(ix: dict, keys: list[str], path: str, height: int) -> Instruction:
    """One instruction in `json` (indices) or `jsonParsed` (pubkeys / parsed) form."""
    pid_index = ix.get("programIdIndex")
    if pid_index is not None:  # json encoding
        return _mk(path, keys[pid_index], [keys[a] for a in ix["accounts"]], _data(ix["data"]), height)
    if "parsed" in ix:
        parsed = ix["parsed"]
        if not isinstance(parsed, dict):  # e.g. memo: the RPC gives a bare string
            parsed = {"type": None, "info": parsed}
        return _mk(path, ix["programId"], _parsed_accounts(parsed), None, height, parsed, ix.get("program"))
    return _mk(path, ix["programId"], list(ix["accounts"]), _data(ix["data"]), height)


def _parsed_accounts(parsed: dict) -> list[str]:
    """Accounts named in a parsed instruction's info (its raw account list is not returned by the RPC)."""
    info = parsed.get("info")
    if not isinstance(info, dict):
        return []
    # Only base58 pubkeys: info also carries free text of that length (e.g. a createAccountWithSeed seed).
    return [v for v in info.values() if type(v) is str and 32 <= len(v) <= 44 and _pubkey_ok(v)]


def _attach_inner(tops: list[Instruction], meta: dict, keys: list[str], parsed_form: bool) -> bool:
    """Place meta.innerInstructions under their parents using stackHeight.

    The parent of an inner instruction at height h is the nearest preceding instruction of
    height h-1 in the same group (the top-level one for h=2). Without stackHeight (old
    transactions), every inner instruction is a direct child of the top-level instruction.
    The compiled form (json/base64 encodings) is built inline: it is the hot path.
    Returns True when every inner instruction was resolved by index into `keys`.
    """
    groups = meta.get("innerInstructions")
    if not groups:
        return True
    by_index = True
    b58cache = _B58_DATA
    new = _new
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
            siblings = parent.children
            path = f"{parent.path}.{len(siblings) + 1}"
            pid_index = ix.get("programIdIndex")
            if pid_index is not None:
                text = ix["data"]
                data = b58cache.get(text)
                if data is None:
                    data = _data(text)
                child = new(Instruction)
                child.path = path
                child.program_id = keys[pid_index]
                child.accounts = [keys[a] for a in ix["accounts"]]
                child.data = data
                child.stack_height = sh or 2
                child.parsed = None
                child.program_name = None
                child.children = []
            else:
                child = _json_ix(ix, keys, path, sh or 2)
                by_index = False
            siblings.append(child)
            del stack[h - 1:]
            stack.append(child)
    return by_index


def _balances(items, keys: list[str]) -> list[TokenBalance]:
    if not items:
        return []
    out = []
    for b in items:
        ui = b["uiTokenAmount"]
        idx = b["accountIndex"]
        tb = _new(TokenBalance)  # see _mk: skips the dataclass __init__
        tb.account_index = idx
        tb.account = keys[idx]
        tb.mint = b["mint"]
        tb.owner = b.get("owner")
        tb.amount = int(ui["amount"])
        tb.decimals = ui["decimals"]
        tb.program_id = b.get("programId")
        out.append(tb)
    return out


_U64_MAX = 2**64 - 1
_MAX_BLOCK_TIME = 65535 * 86400   # 2149-06-06, where ClickHouse's Date ends; no Solana block is newer
_MAX_SLOT = 2**62 - 1             # row versions are slot * 4 + rank in a UInt64 (pipelines.clickhouse.tables)


_PUBKEY_RE = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")
_PUBKEYS_SEEN: set[str] = set()   # keys already checked (bounded like the caches above)
_STR_ONLY = frozenset({str})


def _pubkey_ok(key) -> bool:
    if key in _PUBKEYS_SEEN:
        return True
    if type(key) is not str or _PUBKEY_RE.fullmatch(key) is None:
        return False
    if len(_PUBKEYS_SEEN) >= _CACHE_MAX:
        _PUBKEYS_SEEN.clear()
    _PUBKEYS_SEEN.add(key)
    return True


def _all_pubkeys(keys) -> bool:
    """Every item a base58 pubkey string; one C-level set check in the common (all seen) case."""
    try:
        if _PUBKEYS_SEEN.issuperset(keys):
            return True
    except TypeError:  # an unhashable item (list, dict): certainly not a key
        return False
    return all(map(_pubkey_ok, keys))


def _bad(what: str, value) -> DecodeError:
    return DecodeError("malformed_transaction", f"{what}: {value!r}"[:300])


def _check_shape(tx: Transaction, ix_by_index: bool = False) -> Transaction:
    """Reject results whose fields do not have the types the RPC guarantees.

    WHY: everything downstream (rules, event ids, the sink's columns) trusts these types. A damaged
    response (a proxy, a buggy provider) must become this typed error - a dead letter - rather than
    a crash in the classifier or a record of the wrong shape. Plain type checks: cheap next to parsing.
    """
    if type(tx.signature) is not str or not tx.signature:
        raise _bad("signature", tx.signature)
    if type(tx.slot) is not int or not 0 <= tx.slot <= _MAX_SLOT:
        raise _bad("slot", tx.slot)
    bt = tx.block_time
    if bt is not None and (type(bt) is not int or not 0 <= bt <= _MAX_BLOCK_TIME):
        raise _bad("blockTime", bt)
    if not _all_pubkeys(tx.account_keys):
        raise _bad("account keys", tx.account_keys)
    logs = tx.log_messages
    if type(logs) is not list or not _STR_ONLY.issuperset(map(type, logs)):
        raise _bad("logMessages", logs)
    for b in (*tx.pre_token_balances, *tx.post_token_balances):
        if (not _pubkey_ok(b.mint) or not _pubkey_ok(b.account) or (b.owner is not None and not _pubkey_ok(b.owner))
                or type(b.amount) is not int or not 0 <= b.amount <= _U64_MAX
                or type(b.decimals) is not int or not 0 <= b.decimals <= 255):
            raise _bad("token balance", (b.account, b.mint, b.owner, b.amount, b.decimals))
    if ix_by_index:  # every program id / account was taken by index from the keys checked above
        return tx
    stack = list(tx.instructions)
    while stack:
        ix = stack.pop()
        if not _pubkey_ok(ix.program_id) or type(ix.accounts) is not list or not _all_pubkeys(ix.accounts):
            raise _bad(f"instruction {ix.path}", (ix.program_id, ix.accounts))
        stack.extend(ix.children)
    return tx


def _transaction(sig, item, meta, slot, block_time, version, keys, nsig, writable, tops,
                 ix_by_index: bool = False) -> Transaction:
    if slot is None:
        raise DecodeError("malformed_transaction", "no slot in the result")
    return _check_shape(Transaction(
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
    ), ix_by_index)
