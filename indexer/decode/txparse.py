"""getTransaction / getBlock results -> indexer.decode.model.Transaction.

Handles the three RPC encodings (`base64` wire bytes, `json` with base58 data and account
indices, `jsonParsed` with pubkeys and parsed system/token instructions) and both message
versions (legacy, v0 with address lookup tables). The result obeys model.py's contract:
account_keys = static keys + meta.loadedAddresses.writable + .readonly; instructions form a
tree placed by stackHeight with paths "3", "3.1", "3.1.2".

Speed (bench/decode.py): base64/base58 wire messages are read in one pass over the bytes
(_wire_message; tests/indexer/decode/test_wire.py holds it to solders' reading); base58 is
rendered once per distinct account key (memo keyed by the 32 bytes) and an instruction keeps
only its validated account indices into that one list of strings: the list is built on first
read of `Instruction.accounts` (model.py), so lists nobody reads cost nothing.
"""

from __future__ import annotations

import binascii
import re
import struct

import orjson
from solders.pubkey import Pubkey
from solders.signature import Signature

from indexer.decode.base58 import b58decode
from indexer.decode.errors import DecodeError
from indexer.decode.model import Instruction, TokenBalance, Transaction

_pk_from_bytes = Pubkey.from_bytes
_sig_from_bytes = Signature.from_bytes
_a2b_base64 = binascii.a2b_base64
_new = object.__new__
_EMPTY_LIST: list = []

# Bounded memo caches. An indexer sees the same program ids, mints, DAO accounts and LUT entries
# in almost every transaction, and CPI data strings repeat (same instruction, same amount), so
# rendering/decoding each distinct value once saves most of the base58 work. Cleared when full.
# 2**16 entries (<= ~15 MiB per cache): the recurring values (programs, mints, DAO accounts, hot CPI
# data) refill at once after a clear; 2**18 parsed no faster on a 125k-transaction stream but grew
# the listener by ~100 MiB over its first ~130k transactions, the RSS slope of long runs (issue 9).
_CACHE_MAX = 1 << 16
_KEY_STR: dict[bytes, str] = {}   # 32 key bytes -> base58
_B58_DATA: dict[str, bytes] = {}
_PATHS = [str(i) for i in range(64)]   # top-level paths, interned once
_CHILD_PATHS: dict[str, list[str]] = {}  # parent path -> its first child paths (paths repeat in every tx)
_FLAGS: dict[tuple, tuple] = {}   # header shape -> writable flags (few distinct shapes)
_KEY_SPLIT: dict[int, object] = {}  # key count -> unpack_from of that many 32-byte keys (C-level split)


def clear_caches() -> None:
    """Forget memoized base58 renderings (benchmarks use this to measure the cold path)."""
    _KEY_STR.clear()
    _B58_DATA.clear()
    _PUBKEYS_SEEN.clear()


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
    ix._accounts = accounts
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
    la = meta.get("loadedAddresses")
    if la:
        lw = la.get("writable") or _EMPTY_LIST
        lr = la.get("readonly") or _EMPTY_LIST
    else:
        lw = lr = _EMPTY_LIST
    try:
        first_sig, version, nsig, ro_signed, ro_unsigned, keys, tops = _wire_message(raw, lw, lr)
    except IndexError:
        raise DecodeError("malformed_transaction", f"transaction bytes do not parse: truncated {len(raw)}-byte "
                          "message, or an instruction index beyond the account keys") from None
    n_static = len(keys) - len(lw) - len(lr)
    writable = _writable_flags(n_static, nsig, ro_signed, ro_unsigned, len(lw), len(lr))
    by_index = _attach_inner(tops, meta, keys, parsed_form=False)
    if not signature:
        if not first_sig:
            raise DecodeError("malformed_transaction", "transaction bytes carry no signature")
        signature = str(_sig_from_bytes(raw[first_sig:first_sig + 64]))
    return _transaction(signature, item, meta, slot, block_time, version, keys, nsig, writable, tops, by_index,
                        n_static)


def _cu16(raw: bytes, off: int) -> tuple[int, int]:
    """A short_vec length (compact-u16, 1-3 bytes) at `off` -> (value, next offset).

    Canonical encodings only, like the Solana runtime: a redundant zero high byte (an alias of a
    shorter form) or a value beyond u16 is malformed. Short input raises IndexError (the caller
    turns it into a DecodeError).
    """
    b0 = raw[off]
    if b0 < 0x80:
        return b0, off + 1
    b1 = raw[off + 1]
    if b1 < 0x80:
        if b1 == 0:
            raise DecodeError("malformed_transaction", f"non-canonical compact-u16 at byte {off}")
        return (b0 & 0x7F) | b1 << 7, off + 2
    b2 = raw[off + 2]
    if not 0 < b2 <= 3:
        raise DecodeError("malformed_transaction", f"bad compact-u16 at byte {off}")
    return (b0 & 0x7F) | (b1 & 0x7F) << 7 | b2 << 14, off + 3


def _wire_message(raw: bytes, lw: list, lr: list) -> tuple:
    """One pass over the wire bytes: (offset of the first signature or 0, version, header counts, keys, top-level ixs).

    WHY hand-written: solders' from_bytes is fast, but reading its result back into Python (a
    Pubkey object per key, a CompiledInstruction per instruction, bytes() copies) costs more than
    walking the bytes here with int indexing and slices. The layout (bincode VersionedTransaction):
    short_vec<[u8; 64]> signatures; optional 0x80|version prefix; header (3 x u8);
    short_vec<[u8; 32]> keys; [u8; 32] blockhash; short_vec<instruction {u8 program index,
    short_vec<u8> accounts, short_vec<u8> data}>; for v0, short_vec<lookup {[u8; 32] table,
    short_vec<u8> writable, short_vec<u8> readonly}>. Every length is checked against the buffer
    (a slice past the end would silently come back short); trailing bytes are ignored, as by bincode.
    """
    n = len(raw)
    c = raw[0]
    if c < 0x80:
        nsigs, off = c, 1
    else:
        nsigs, off = _cu16(raw, 0)
    first_sig = off if nsigs else 0
    off += 64 * nsigs
    prefix = raw[off]
    if prefix & 0x80:
        if prefix != 0x80:
            raise DecodeError("malformed_transaction", f"unsupported message version {prefix & 0x7F}")
        version: int | str = 0
        off += 1
    else:
        version = "legacy"
    nsig, ro_signed, ro_unsigned = raw[off], raw[off + 1], raw[off + 2]
    c = raw[off + 3]
    if c < 0x80:
        nkeys, off = c, off + 4
    else:
        nkeys, off = _cu16(raw, off + 3)
    kend = off + 32 * nkeys
    if kend + 32 > n:  # keys + recent blockhash
        raise IndexError
    split = _KEY_SPLIT.get(nkeys)
    if split is None:
        split = _KEY_SPLIT[nkeys] = struct.Struct("32s" * nkeys).unpack_from
    keys = list(map(_KEY_STR.get, split(raw, off)))
    if None in keys:
        keys = _render_missing(raw, off, keys)
    if lw or lr:
        keys += lw
        keys += lr
    nall = len(keys)
    off = kend + 32
    c = raw[off]
    if c < 0x80:
        nix, off = c, off + 1
    else:
        nix, off = _cu16(raw, off)
    tops = []
    new = _new
    for path in _PATHS[:nix] if nix <= 64 else map(str, range(nix)):
        pid = raw[off]
        na = raw[off + 1]
        if na < 0x80:
            off += 2
        else:
            na, off = _cu16(raw, off + 1)
        aend = off + na
        if aend > n:
            raise IndexError
        idx = raw[off:aend]
        if idx and max(idx) >= nall:
            raise IndexError
        nd = raw[aend]
        if nd < 0x80:
            off = aend + 1
        else:
            nd, off = _cu16(raw, aend)
        dend = off + nd
        if dend > n:
            raise IndexError
        ix = new(Instruction)
        ix.path = path
        ix.program_id = keys[pid]
        ix._accounts = None  # resolved on first read (model.Instruction.accounts)
        ix._account_src = (keys, idx)
        ix.data = raw[off:dend]
        ix.stack_height = 1
        ix.parsed = None
        ix.program_name = None
        ix.children = []
        tops.append(ix)
        off = dend
    if version == 0:  # address table lookups: checked for length only (meta.loadedAddresses has the keys)
        c = raw[off]
        if c < 0x80:
            nlut, off = c, off + 1
        else:
            nlut, off = _cu16(raw, off)
        for _ in range(nlut):
            off += 32
            nw, off = _cu16(raw, off)
            nr, off = _cu16(raw, off + nw)
            off += nr
        if off > n:
            raise IndexError
    return first_sig, version, nsig, ro_signed, ro_unsigned, keys, tops


def _render_missing(raw: bytes, off: int, keys: list) -> list:
    """Fill the keys the memo did not have (base58 via solders, ~0.45 us each), remembering them."""
    cache = _KEY_STR
    if len(cache) + len(keys) >= _CACHE_MAX:
        cache.clear()
    for i, s in enumerate(keys):
        if s is None:
            kb = raw[off + 32 * i:off + 32 * i + 32]
            s = cache.get(kb)
            if s is None:
                s = cache[kb] = str(_pk_from_bytes(kb))
            keys[i] = s
    return keys


def _writable_flags(n_static: int, nsig: int, ro_signed: int, ro_unsigned: int, n_lw: int, n_lr: int) -> list[bool]:
    """Message header rule: writable signers, readonly signers, writable unsigned, readonly unsigned."""
    # Checked first: a corrupt header count (2**31) would otherwise allocate a list of that size.
    if (type(nsig) is not int or type(ro_signed) is not int or type(ro_unsigned) is not int
            or not 0 <= ro_signed <= nsig <= n_static or not 0 <= ro_unsigned <= n_static - nsig):
        raise DecodeError("malformed_transaction", f"message header ({nsig}, {ro_signed}, {ro_unsigned}) "
                          f"does not fit {n_static} account keys")
    shape = (n_static, nsig, ro_signed, ro_unsigned, n_lw, n_lr)  # all exact ints here (checked above)
    flags = _FLAGS.get(shape)
    if flags is None:
        flags = [True] * (nsig - ro_signed) + [False] * ro_signed
        flags += [True] * (n_static - nsig - ro_unsigned) + [False] * ro_unsigned
        if n_lw or n_lr:
            flags += [True] * n_lw + [False] * n_lr
        if len(_FLAGS) >= 4096:
            _FLAGS.clear()
        flags = _FLAGS[shape] = tuple(flags)
    return list(flags)  # a fresh list: the Transaction's own


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
        n = len(keys)
        if type(pid_index) is not int or not 0 <= pid_index < n:  # a negative index must not wrap around
            raise _bad("programIdIndex", pid_index)
        accounts = ix["accounts"]
        if type(accounts) is not list or not all(type(a) is int and 0 <= a < n for a in accounts):
            raise _bad("instruction accounts", accounts)
        return _mk(path, keys[pid_index], [keys[a] for a in accounts], _data(ix["data"]), height)
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


def _child_paths(path: str) -> list[str]:
    """The first 16 child paths under `path` ("3" -> "3.1" ... "3.16"), built once per parent path."""
    if len(_CHILD_PATHS) >= 4096:
        _CHILD_PATHS.clear()
    return [f"{path}.{i}" for i in range(1, 17)]


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
    child_paths = _CHILD_PATHS
    new = _new
    nall = len(keys)
    for group in groups:
        top = tops[group["index"]]
        stack = [top]  # stack[k] = latest instruction at height k+1
        for ix in group["instructions"]:
            sh = ix.get("stackHeight")
            if sh is None or sh < 2:
                h = sh or 2
                parent = top
                del stack[1:]
            elif sh <= len(stack):
                h = sh
                parent = stack[sh - 2]
                del stack[sh - 1:]
            elif type(sh) is int:  # one level deeper (the common case), or a gap: under the deepest parent
                h = sh
                parent = stack[-1]
            else:
                raise _bad("stackHeight", sh)
            siblings = parent.children
            paths = child_paths.get(parent.path)
            if paths is None:
                paths = child_paths[parent.path] = _child_paths(parent.path)
            n = len(siblings)
            path = paths[n] if n < 16 else f"{parent.path}.{n + 1}"
            pid_index = ix.get("programIdIndex")
            if pid_index is not None:
                if type(pid_index) is not int or not 0 <= pid_index < nall:
                    raise _bad("programIdIndex", pid_index)
                text = ix["data"]
                data = b58cache.get(text)
                if data is None:
                    data = _data(text)
                child = new(Instruction)
                child.path = path
                child.program_id = keys[pid_index]
                idx = ix["accounts"]
                if type(idx) is not list:
                    raise _bad("inner instruction accounts", idx)
                idx = bytes(idx)  # ints 0..255 or TypeError/ValueError (-> malformed_transaction)
                if idx and max(idx) >= nall:
                    raise _bad("inner instruction account index", max(idx))
                child._accounts = None  # resolved on first read (model.Instruction.accounts)
                child._account_src = (keys, idx)
                child.data = data
                child.stack_height = h
                child.parsed = None
                child.program_name = None
                child.children = []
            else:
                child = _json_ix(ix, keys, path, h)
                by_index = False
            siblings.append(child)
            stack.append(child)
    return by_index


_U64_MAX = 2**64 - 1
_MAX_BLOCK_TIME = 65535 * 86400   # 2149-06-06, where ClickHouse's Date ends; no Solana block is newer
_MAX_SLOT = 2**62 - 1             # row versions are slot * 4 + rank in a UInt64 (pipelines.clickhouse.tables)


_PUBKEY_RE = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")
_PUBKEYS_SEEN: set[str] = set()   # keys already checked (bounded like the caches above)


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


def _balances(items, keys: list[str]) -> list[TokenBalance]:
    """meta.pre/postTokenBalances -> TokenBalance, validated in the same loop (see _check_shape).

    The account is taken by index from the already-checked keys; mint and owner are checked
    against the memo of seen pubkeys first (one set lookup each in the common case).
    """
    if not items:
        return []
    seen = _PUBKEYS_SEEN
    new = _new
    out = []
    for b in items:
        ui = b["uiTokenAmount"]
        idx = b["accountIndex"]
        mint = b["mint"]
        owner = b.get("owner")
        amount = int(ui["amount"])
        decimals = ui["decimals"]
        if (type(idx) is not int or idx < 0 or not 0 <= amount <= _U64_MAX
                or type(decimals) is not int or not 0 <= decimals <= 255
                or (mint not in seen and not _pubkey_ok(mint))
                or (owner is not None and owner not in seen and not _pubkey_ok(owner))):
            raise _bad("token balance", (idx, mint, owner, amount, decimals))
        tb = new(TokenBalance)  # see _mk: skips the dataclass __init__
        tb.account_index = idx
        tb.account = keys[idx]
        tb.mint = mint
        tb.owner = owner
        tb.amount = amount
        tb.decimals = decimals
        tb.program_id = b.get("programId")
        out.append(tb)
    return out


def _check_shape(sig, slot, block_time, keys: list, n_trusted: int, logs, tops: list,
                 ix_by_index: bool) -> None:
    """Reject results whose fields do not have the types the RPC guarantees.

    WHY: everything downstream (rules, event ids, the sink's columns) trusts these types. A damaged
    response (a proxy, a buggy provider) must become this typed error - a dead letter - rather than
    a crash in the classifier or a record of the wrong shape. Plain type checks: cheap next to parsing.
    The first `n_trusted` keys were rendered from wire bytes (valid by construction); token
    balances are checked where they are built (_balances).
    """
    if type(sig) is not str or not sig:
        raise _bad("signature", sig)
    if type(slot) is not int or not 0 <= slot <= _MAX_SLOT:
        raise _bad("slot", slot)
    if block_time is not None and (type(block_time) is not int or not 0 <= block_time <= _MAX_BLOCK_TIME):
        raise _bad("blockTime", block_time)
    if not _all_pubkeys(keys[n_trusted:] if n_trusted else keys):
        raise _bad("account keys", keys)
    try:
        if type(logs) is not list:
            raise TypeError
        "".join(logs)  # a TypeError unless every line is a str: C speed, ~3x a per-item type check
    except TypeError:
        raise _bad("logMessages", logs) from None
    if ix_by_index:  # every program id / account was taken by index from the keys checked above
        return
    stack = list(tops)
    while stack:
        ix = stack.pop()
        if not _pubkey_ok(ix.program_id) or type(ix.accounts) is not list or not _all_pubkeys(ix.accounts):
            raise _bad(f"instruction {ix.path}", (ix.program_id, ix.accounts))
        stack.extend(ix.children)


def _transaction(sig, item, meta, slot, block_time, version, keys, nsig, writable, tops,
                 ix_by_index: bool = False, n_trusted: int = 0) -> Transaction:
    if slot is None:
        raise DecodeError("malformed_transaction", "no slot in the result")
    if block_time is None:
        block_time = item.get("blockTime")
    logs = meta.get("logMessages") or []
    _check_shape(sig, slot, block_time, keys, n_trusted, logs, tops, ix_by_index)
    tx = _new(Transaction)  # see _mk: skips the dataclass __init__
    tx.signature = sig
    tx.slot = slot
    tx.block_time = block_time
    tx.fee = meta.get("fee", 0)
    tx.err = meta.get("err")
    tx.version = version
    tx.account_keys = keys
    tx.num_signers = nsig
    tx.writable = writable
    tx.instructions = tops
    tx.log_messages = logs
    tx.pre_token_balances = _balances(meta.get("preTokenBalances"), keys)
    tx.post_token_balances = _balances(meta.get("postTokenBalances"), keys)
    return tx
