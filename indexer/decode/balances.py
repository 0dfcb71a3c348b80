"""Token balance changes of a transaction (meta pre/postTokenBalances), by account and by owner+mint.

Why: the reliable way to attribute a value flow is the balance delta of the token accounts it
touched (programs.md: identify payer/recipient by role from token-balance deltas, IDL account
names are only labels). An account that appears only in pre (closed) or only in post (created)
counts as 0 on the missing side.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.decode.model import Transaction


@dataclass(frozen=True, slots=True)
class BalanceChange:
    account: str
    mint: str
    owner: str | None
    decimals: int
    pre: int
    post: int

    @property
    def delta(self) -> int:
        return self.post - self.pre


def balance_changes(tx: Transaction, include_unchanged: bool = False) -> list[BalanceChange]:
    """One entry per token account in pre or post balances, in account-index order."""
    pre = {b.account_index: b for b in tx.pre_token_balances}
    post = {b.account_index: b for b in tx.post_token_balances}
    out = []
    for idx in sorted(pre.keys() | post.keys()):
        a, b = pre.get(idx), post.get(idx)
        ref = b or a
        change = BalanceChange(ref.account, ref.mint, ref.owner if b is None or b.owner is None else b.owner,
                               ref.decimals, a.amount if a else 0, b.amount if b else 0)
        if include_unchanged or change.delta:
            out.append(change)
    return out


def deltas_by_owner_mint(tx: Transaction) -> dict[tuple[str | None, str], int]:
    """Net change per (owner, mint) over all of the owner's token accounts; zero nets omitted."""
    acc: dict[tuple[str | None, str], int] = {}
    for c in balance_changes(tx):
        key = (c.owner, c.mint)
        acc[key] = acc.get(key, 0) + c.delta
    return {k: v for k, v in acc.items() if v}
