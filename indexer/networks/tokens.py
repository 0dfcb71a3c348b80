"""Token movements as the flow rules see them: (kind, mint, amount, from, to), mint always resolved.

Every rule ends up asking "how much of which mint moved where" of an SPL Token instruction
or of a Helium circuit-breaker wrapper. Plain `Transfer` names no mint, so the mint comes
from the transaction's token balances (account -> mint/owner). Only the value-moving SPL
instructions matter here; everything else (approve, close, freeze ...) is not a flow.

Layouts (SPL Token and Token-2022 share tags 0-24; render.md section 4):
  3 Transfer(amount)            src, dst, authority
  7 MintTo(amount)              mint, dst, authority
  8 Burn(amount)                src, mint, authority
 12 TransferChecked(amount, d)  src, mint, dst, authority
 14 MintToChecked(amount, d)    mint, dst, authority
 15 BurnChecked(amount, d)      src, mint, authority
 26/1 TransferCheckedWithFee(amount, d, fee)  src, mint, dst, authority   (Token-2022)
circuit_breaker mint_v0 / transfer_v0 / burn_v0 take `{amount: u64}` after the 8-byte
discriminator; accounts mint_v0(mint, to, authority), transfer_v0(from, to, owner),
burn_v0(from, owner, mint) (programs.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.decode.model import Instruction, Transaction

TRANSFER, MINT, BURN = "transfer", "mint", "burn"

# raw tag -> (kind, instruction name, src idx, mint idx, dst idx, authority idx)
_RAW = {
    3: (TRANSFER, "transfer", 0, None, 1, 2),
    7: (MINT, "mintTo", None, 0, 1, 2),
    8: (BURN, "burn", 0, 1, None, 2),
    12: (TRANSFER, "transferChecked", 0, 1, 2, 3),
    14: (MINT, "mintToChecked", None, 0, 1, 2),
    15: (BURN, "burnChecked", 0, 1, None, 2),
}
# jsonParsed type -> (kind, source key, destination key)
_PARSED = {
    "transfer": (TRANSFER, "source", "destination"),
    "transferChecked": (TRANSFER, "source", "destination"),
    "transferCheckedWithFee": (TRANSFER, "source", "destination"),
    "mintTo": (MINT, None, "account"),
    "mintToChecked": (MINT, None, "account"),
    "burn": (BURN, "account", None),
    "burnChecked": (BURN, "account", None),
}
CB_MINT = bytes.fromhex("d2a4a1d34780dff4")
CB_TRANSFER = bytes.fromhex("a2b6c16166557fbd")
CB_BURN = bytes.fromhex("adf6f0eae5b2f939")


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


def _u64(data: bytes, offset: int) -> int | None:
    if len(data) < offset + 8:
        return None
    return int.from_bytes(data[offset:offset + 8], "little")


def _acc(accounts: list[str], idx: int | None) -> str:
    return accounts[idx] if idx is not None and idx < len(accounts) else ""


def _parsed_amount(info: dict) -> int | None:
    raw = info.get("amount")
    if raw is None:
        raw = (info.get("tokenAmount") or {}).get("amount")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def spl_token_op(ix: Instruction, balances: Balances) -> TokenOp | None:
    """The value movement of an SPL Token / Token-2022 instruction, or None if it moves none."""
    parsed = ix.parsed
    if ix.data is None:
        if not isinstance(parsed, dict):
            return None
        spec = _PARSED.get(parsed.get("type"))
        info = parsed.get("info")
        if spec is None or not isinstance(info, dict):
            return None
        amount = _parsed_amount(info)
        if amount is None:
            return None
        kind, src_key, dst_key = spec
        src = info.get(src_key, "") if src_key else ""
        dst = info.get(dst_key, "") if dst_key else ""
        authority = (info.get("authority") or info.get("multisigAuthority") or info.get("mintAuthority")
                     or info.get("multisigMintAuthority") or "")
        mint = info.get("mint") or balances.mint(src or dst)
        return TokenOp(kind, parsed["type"], mint, amount, src, dst, authority, ix.path, ix.program_id)
    data = ix.data
    if not data:
        return None
    tag = data[0]
    if tag == 26 and len(data) >= 2 and data[1] == 1:  # Token-2022 TransferCheckedWithFee
        spec, offset, name = (TRANSFER, "transferCheckedWithFee", 0, 1, 2, 3), 2, "transferCheckedWithFee"
    else:
        spec = _RAW.get(tag)
        if spec is None:
            return None
        offset, name = 1, spec[1]
    amount = _u64(data, offset)
    if amount is None:
        return None
    kind, _, si, mi, di, ai = spec
    acc = ix.accounts
    src, dst = _acc(acc, si), _acc(acc, di)
    mint = _acc(acc, mi) or balances.mint(src or dst)
    return TokenOp(kind, name, mint, amount, src, dst, _acc(acc, ai), ix.path, ix.program_id)


def breaker_op(ix: Instruction, balances: Balances) -> TokenOp | None:
    """The movement a circuit_breaker mint_v0 / transfer_v0 / burn_v0 performs (its args.amount)."""
    data = ix.data
    if data is None or len(data) < 16:
        return None
    disc, acc = data[:8], ix.accounts
    amount = _u64(data, 8)
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
