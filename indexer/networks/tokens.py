"""Token movements as the flow rules see them: (kind, mint, amount, from, to), mint always resolved.

Every rule ends up asking "how much of which mint moved where" of an SPL Token instruction
or of a Helium circuit-breaker wrapper. Plain `Transfer` names no mint, so the mint comes
from the transaction's token balances (account -> mint/owner). Only the value-moving SPL
instructions matter here; everything else (approve, close, freeze ...) is not a flow.

Raw SPL Token instructions are decoded by indexer.decode.spl_token; jsonParsed ones are read
from the fields the RPC already named.
circuit_breaker mint_v0 / transfer_v0 / burn_v0 take `{amount: u64}` after the 8-byte
discriminator; accounts mint_v0(mint, to, authority), transfer_v0(from, to, owner),
burn_v0(from, owner, mint) (programs.md).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from indexer.decode.errors import DecodeError
from indexer.decode.model import Instruction, Transaction
from indexer.decode.spl_token import PROGRAM_NAMES, TOKEN_2022_PROGRAM_ID, decode_token_instruction

TRANSFER, MINT, BURN = "transfer", "mint", "burn"

# decoded SPL name -> (kind, source key, destination key); keys are the decoder's (jsonParsed) names
_SPL = {
    "transfer": (TRANSFER, "source", "destination"),
    "transferChecked": (TRANSFER, "source", "destination"),
    "transferCheckedWithFee": (TRANSFER, "source", "destination"),
    "mintTo": (MINT, None, "account"),
    "mintToChecked": (MINT, None, "account"),
    "burn": (BURN, "account", None),
    "burnChecked": (BURN, "account", None),
}
_VALUE_TAGS = frozenset({3, 7, 8, 12, 14, 15, 26})
CB_MINT = bytes.fromhex("d2a4a1d34780dff4")
CB_TRANSFER = bytes.fromhex("a2b6c16166557fbd")
CB_BURN = bytes.fromhex("adf6f0eae5b2f939")

_PUBKEY = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")


@dataclass(slots=True)
class TokenOp:
    kind: str            # transfer | mint | burn
    name: str            # instruction name: transferChecked, mintTo, mint_v0 ...
    mint: str            # "" when it cannot be resolved
    amount: int
    source: str          # token account debited ("" for mints)
    destination: str     # token account credited ("" for burns)
    authority: str
    path: str
    program_id: str


class Balances:
    """token account -> (mint, owner, decimals), from pre and post token balances."""

    __slots__ = ("_by_account",)

    def __init__(self, tx: Transaction) -> None:
        by: dict[str, tuple[str, str, int]] = {}
        for b in tx.pre_token_balances:
            by[b.account] = (b.mint, b.owner or "", b.decimals)
        for b in tx.post_token_balances:
            if b.account not in by or (b.owner and not by[b.account][1]):
                by[b.account] = (b.mint, b.owner or "", b.decimals)
        self._by_account = by

    def mint(self, account: str) -> str:
        got = self._by_account.get(account)
        return got[0] if got else ""

    def owner(self, account: str) -> str:
        got = self._by_account.get(account)
        return got[1] if got else ""

    def decimals(self, account: str) -> int | None:
        got = self._by_account.get(account)
        return got[2] if got else None

    def mints(self) -> set[str]:
        return {v[0] for v in self._by_account.values()}


def _acc(accounts: list[str], idx: int | None) -> str:
    return accounts[idx] if idx is not None and idx < len(accounts) else ""


def _parsed_op(ix: Instruction, balances: Balances) -> TokenOp | None:
    """Read a jsonParsed SPL instruction directly: the RPC already decoded it into named fields
    (`info.amount` or `info.tokenAmount.amount`, `source`/`destination`/`account`/`mint`,
    `authority` or its multisig forms). Hot path for jsonParsed input, so no generic decode."""
    parsed = ix.parsed
    if type(parsed) is not dict:
        return None
    name = parsed.get("type")
    spec = _SPL.get(name) if type(name) is str else None
    info = parsed.get("info")
    if spec is None or type(info) is not dict:
        return None
    raw = info.get("amount")
    if raw is None:
        token_amount = info.get("tokenAmount")
        raw = token_amount.get("amount") if type(token_amount) is dict else None
    try:
        amount = int(raw)
    except (TypeError, ValueError):
        return None
    if amount < 0:
        return None
    kind, src_key, dst_key = spec
    src = info.get(src_key, "") if src_key else ""
    dst = info.get(dst_key, "") if dst_key else ""
    authority = (info.get("authority") or info.get("multisigAuthority") or info.get("mintAuthority")
                 or info.get("multisigMintAuthority") or "")
    mint = info.get("mint") or ""
    if not all(type(v) is str and (not v or _PUBKEY.fullmatch(v)) for v in (src, dst, authority, mint)):
        return None   # damaged parsed info (the RPC always gives pubkey strings): not a readable movement
    mint = mint or balances.mint(src or dst)
    return TokenOp(kind, name, mint, amount, src, dst, authority, ix.path, ix.program_id)


_U64_AT = struct.Struct("<Q").unpack_from
# Raw value-moving SPL Token instructions, read without the generic decoder (spl_token_op runs on every
# token CPI of every watched transaction). tag -> (kind, name, exact data length, amount offset,
# source index, destination index, authority index, mint index); -1 = no such account role. The
# account positions are indexer.decode.spl_token's _SPEC orders; tests/indexer/networks/test_tokens.py
# holds this table to the generic decoder's reading (_spl_token_op_generic) on every tag and length.
_RAW_OPS: dict[int, tuple[str, str, int, int, int, int, int, int]] = {
    3: (TRANSFER, "transfer", 9, 1, 0, 1, 2, -1),
    7: (MINT, "mintTo", 9, 1, -1, 1, 2, 0),
    8: (BURN, "burn", 9, 1, 0, -1, 2, 1),
    12: (TRANSFER, "transferChecked", 10, 1, 0, 2, 3, 1),
    14: (MINT, "mintToChecked", 10, 1, -1, 1, 2, 0),
    15: (BURN, "burnChecked", 10, 1, 0, -1, 2, 1),
}
_RAW_FEE_OP = (TRANSFER, "transferCheckedWithFee", 19, 2, 0, 2, 3, 1)  # Token-2022 tag 26, sub-tag 1


def spl_token_op(ix: Instruction, balances: Balances) -> TokenOp | None:
    """The value movement of an SPL Token / Token-2022 instruction, or None if it moves none.

    Raw bytes: one table lookup by tag (_RAW_OPS) and accounts by position; the result is the one the
    generic decoder path gives (_spl_token_op_generic): same names, same refusals (wrong length,
    not a token program). jsonParsed instructions are read field by field (_parsed_op).
    """
    data = ix.data
    if data is None:
        return _parsed_op(ix, balances)
    if not data:
        return None
    spec = _RAW_OPS.get(data[0])
    if spec is None:
        if data[0] != 26 or ix.program_id != TOKEN_2022_PROGRAM_ID or len(data) < 2 or data[1] != 1:
            return None
        spec = _RAW_FEE_OP
    kind, name, size, at, i_src, i_dst, i_auth, i_mint = spec
    if len(data) != size or ix.program_id not in PROGRAM_NAMES:
        return None
    acc = ix.accounts
    n = len(acc)
    src = acc[i_src] if 0 <= i_src < n else ""
    dst = acc[i_dst] if 0 <= i_dst < n else ""
    authority = acc[i_auth] if i_auth < n else ""
    mint = (acc[i_mint] if 0 <= i_mint < n else "") or balances.mint(src or dst)
    return TokenOp(kind, name, mint, _U64_AT(data, at)[0], src, dst, authority, ix.path, ix.program_id)


def _spl_token_op_generic(ix: Instruction, balances: Balances) -> TokenOp | None:
    """The value movement of an SPL Token / Token-2022 instruction, or None if it moves none.

    Raw bytes are decoded by the decoder (indexer.decode.spl_token); this maps the decoded
    roles to (kind, from, to) and resolves the mint of a plain Transfer through the token
    balances. jsonParsed instructions are read field by field (_parsed_op).
    """
    data = ix.data
    if data is None:
        return _parsed_op(ix, balances)
    if not data or data[0] not in _VALUE_TAGS:
        return None
    try:
        dec = decode_token_instruction(ix.program_id, data, ix.accounts)
    except DecodeError:
        return None
    spec = _SPL.get(dec.name)
    amount = dec.args.get("amount")
    if spec is None or type(amount) is not int:
        return None
    kind, src_key, dst_key = spec
    acc = dec.accounts
    src = acc.get(src_key, "") if src_key else ""
    dst = acc.get(dst_key, "") if dst_key else ""
    authority = acc.get("authority") or acc.get("mintAuthority") or ""
    mint = acc.get("mint") or balances.mint(src or dst)
    return TokenOp(kind, dec.name, mint, amount, src, dst, authority, ix.path, ix.program_id)


def breaker_op(ix: Instruction, balances: Balances) -> TokenOp | None:
    """The movement a circuit_breaker mint_v0 / transfer_v0 / burn_v0 performs (its args.amount)."""
    data = ix.data
    if data is None or len(data) < 16:
        return None
    disc, acc = bytes(data[:8]), ix.accounts
    amount = int.from_bytes(data[8:16], "little")
    if disc == CB_MINT:
        return TokenOp(MINT, "mint_v0", _acc(acc, 0), amount, "", _acc(acc, 1), _acc(acc, 2),
                       ix.path, ix.program_id)
    if disc == CB_TRANSFER:
        src, dst = _acc(acc, 0), _acc(acc, 1)
        mint = balances.mint(src) or balances.mint(dst) or _child_mint(ix, balances)
        return TokenOp(TRANSFER, "transfer_v0", mint, amount, src, dst, _acc(acc, 2), ix.path, ix.program_id)
    if disc == CB_BURN:
        return TokenOp(BURN, "burn_v0", _acc(acc, 2), amount, _acc(acc, 0), "", _acc(acc, 1),
                       ix.path, ix.program_id)
    return None


def _child_mint(ix: Instruction, balances: Balances) -> str:
    for child in ix.children:
        op = spl_token_op(child, balances)
        if op and op.mint:
            return op.mint
    return ""
