"""Transaction model: what the rest of the indexer sees of a Solana transaction.

Contract (shared by decode, devchain, networks, sources):
- `Transaction.account_keys`: static keys, then meta.loadedAddresses.writable, then .readonly (base58).
- Instruction paths: top-level instructions are numbered by their 0-based index in the message
  ("0", "1", "2" ... the same index as meta.innerInstructions[].index); inner instructions are
  numbered 1-based among their siblings under the parent found from stackHeight
  ("2.1" = first CPI made by top-level #2, "2.1.1" = first CPI made by that one).
- `Instruction.data` is the raw instruction bytes. For jsonParsed inputs where the RPC replaced
  the data with a parsed form (spl-token, system ...), `data` is None and `parsed` holds
  `{"type": ..., "info": {...}}` as the RPC returned it.
- Failed transactions are parsed and kept with `err` set; they never produce flows.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class _LazyAccounts:
    """Storage behind `Instruction.accounts` (slots outside the dataclass fields).

    WHY: most instructions of a transaction (compute budget, unrelated programs) never have their
    account list read, and resolving it (one list of base58 keys per instruction) was a large part
    of parsing. The parser stores the transaction's key list and the instruction's validated
    index bytes (`_account_src`) and leaves `_accounts` None; the first read of `accounts`
    resolves and keeps the list. Instructions built with `Instruction(...)` store the list itself.
    """

    __slots__ = ("_accounts", "_account_src")


@dataclass(slots=True)
class Instruction(_LazyAccounts):
    path: str
    program_id: str
    accounts: list[str]          # resolved base58 account keys, in instruction order (resolved lazily)
    data: bytes | None
    stack_height: int            # 1 for top-level
    parsed: dict | None = None   # jsonParsed form when the RPC gave no raw data
    program_name: str | None = None  # name the RPC gave in jsonParsed ("spl-token"), else None
    children: list[Instruction] = field(default_factory=list)


def _get_accounts(ix: Instruction) -> list[str]:
    accounts = ix._accounts
    if accounts is None:
        keys, idx = ix._account_src
        accounts = ix._accounts = [keys[a] for a in idx]
    return accounts


def _set_accounts(ix: Instruction, value: list[str]) -> None:
    ix._accounts = value


# Replaces the dataclass's slot descriptor (its storage stays unused): reads, writes, __init__,
# __eq__ and __repr__ all go through the property, so the field behaves as a plain list field.
Instruction.accounts = property(_get_accounts, _set_accounts,  # type: ignore[assignment]
                                doc="Resolved base58 account keys, in instruction order.")


@dataclass(slots=True)
class TokenBalance:
    account_index: int
    account: str                 # the token account (base58)
    mint: str
    owner: str | None
    amount: int                  # base units
    decimals: int
    program_id: str | None = None


@dataclass(slots=True)
class Transaction:
    signature: str
    slot: int
    block_time: int | None
    fee: int
    err: object | None           # meta.err as returned (None = success)
    version: str | int           # "legacy" or 0
    account_keys: list[str]
    num_signers: int             # header.numRequiredSignatures
    writable: list[bool]         # per account key
    instructions: list[Instruction]  # top-level, with children filled
    log_messages: list[str]
    pre_token_balances: list[TokenBalance]
    post_token_balances: list[TokenBalance]

    @property
    def succeeded(self) -> bool:
        return self.err is None

    def is_signer(self, index: int) -> bool:
        return index < self.num_signers

    def walk(self):
        """Every instruction, depth-first in execution order (parents before their CPIs)."""
        stack = list(reversed(self.instructions))
        while stack:
            ix = stack.pop()
            yield ix
            stack.extend(reversed(ix.children))
