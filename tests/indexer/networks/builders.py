"""Small builders for classifier test transactions.

Instruction bytes come from the project's own encoder (`default_registry().encode`, SPL
Token `encode_token_instruction`) and account order from the registry's IDL layout at the
given slot, so a test case is exactly what the decoder would see on chain. The result is an
`indexer.decode.model.Transaction` with paths, program logs (invoke/success lines plus any
extra lines) and token balances derived from the token movements.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from solders.pubkey import Pubkey

from indexer.decode.base58 import b58encode
from indexer.decode.model import Instruction, TokenBalance, Transaction
from indexer.decode.registry import default_registry
from indexer.decode.spl_token import TOKEN_PROGRAM_ID, encode_token_instruction
from indexer.networks.config import default_config

CFG = default_config()
REG = default_registry()
P = {name: pid for pid, name in CFG.helium.programs.items()}
TUKTUK = "tuktukUrfhXT6ZT77QTU8RQtvgL967uRuVagWF57zVA"
MINTS = {info.symbol: mint for mint, info in CFG.helium.mints.items()}
HNT, IOT, MOBILE, DC = MINTS["HNT"], MINTS["IOT"], MINTS["MOBILE"], MINTS["DC"]
RENDER = CFG.render.mint.mint
IOT_SUB_DAO = "39Lw1RH6zt8AJvKn3BTxmUDofzduCM2J3kSaGDZ8L7Sk"
MOBILE_SUB_DAO = "Gm9xDCJawDEKDrrQW6haw94gABaYzQwCq4ZQU8h8bd22"
SLOT = 409_977_754            # 2026-03-31 (post HIP-138, pre HIP-149 layouts)
BLOCK_TIME = 1_774_916_143


def addr(label: str) -> str:
    """A deterministic valid pubkey for a label."""
    return str(Pubkey(hashlib.sha256(label.encode()).digest()))


def sig(label: str) -> str:
    """A deterministic 64-byte signature string for a label."""
    d = hashlib.sha512(label.encode()).digest()
    return b58encode(d)


@dataclass
class Node:
    program_id: str
    data: bytes
    accounts: list[str]
    children: list[Node] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)


def _sample(t, resolver):
    """A default value of an IDL type (zeros, empty, None, first enum variant)."""
    if isinstance(t, str):
        return {"bool": False, "pubkey": addr("sample"), "string": "", "bytes": b""}.get(
            t, 0.0 if t.startswith("f") else 0)
    kind = t[0]
    if kind in ("option", "coption"):
        return None
    if kind == "vec":
        return b"" if t[1] == "u8" else []
    if kind == "array":
        return bytes(t[2]) if t[1] == "u8" else [_sample(t[1], resolver) for _ in range(t[2])]
    td = resolver.resolve(t)
    if td.kind == "alias":
        return _sample(td.alias, resolver)
    if td.kind == "struct":
        if td.tuple_fields:
            return [_sample(f, resolver) for f in td.fields]
        return {n: _sample(f, resolver) for n, f in td.fields}
    vname, body = td.variants[0]
    if body is None:
        return {vname: None}
    if body[0] == "tuple":
        return {vname: [_sample(f, resolver) for f in body[1]]}
    return {vname: {n: _sample(f, resolver) for n, f in body[1]}}


def _merge(base, over):
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return over


def anchor(program: str, name: str, args: dict | None = None, *, slot: int | None = SLOT,
           children: list[Node] | None = None, logs: list[str] | None = None, **accounts: str) -> Node:
    """An Anchor instruction of a Helium program, accounts by IDL name (last path segment).

    `args` overrides a default-valued argument set, e.g. {"args": {"amount": 5}}.
    """
    pid = P[program]
    compiled = REG._anchor[pid].by_name(name, slot)
    resolver = compiled._encoder.r
    full = _merge({n: _sample(t, resolver) for n, t in compiled.args}, args or {})
    names = compiled.account_names
    acct = [accounts.get(n.split(".")[-1]) or addr(f"{program}.{name}.{n}") for n in names]
    data = REG.encode(pid, name, full, slot)
    return Node(pid, data, acct, list(children or []), list(logs or []))


def tuktuk(*children: Node) -> Node:
    """tuktuk run_task_v0 wrapping CPIs (never a Helium parent)."""
    disc = hashlib.sha256(b"global:run_task_v0").digest()[:8]
    return Node(TUKTUK, disc + b"\0\0\0\0", [addr("tuktuk.task"), addr("tuktuk.crank")], list(children))


def spl(name: str, *, amount: int, program_id: str = TOKEN_PROGRAM_ID, decimals: int | None = None,
        **roles: str) -> Node:
    """An SPL Token instruction; roles by jsonParsed name (source, destination, account, mint, authority)."""
    args = {"amount": amount} if decimals is None else {"amount": amount, "decimals": decimals}
    order = {
        "transfer": ("source", "destination", "authority"),
        "transferChecked": ("source", "mint", "destination", "authority"),
        "mintTo": ("mint", "account", "mintAuthority"),
        "mintToChecked": ("mint", "account", "mintAuthority"),
        "burn": ("account", "mint", "authority"),
        "burnChecked": ("account", "mint", "authority"),
    }[name]
    accts = [roles.get(r) or addr(f"spl.{name}.{r}") for r in order]
    return Node(program_id, encode_token_instruction(program_id, name, args), accts)


def cb_mint(mint: str, to: str, amount: int, authority: str | None = None) -> Node:
    """circuit_breaker.mint_v0 with its SPL mintTo child."""
    auth = authority or addr("cb.mint_authority")
    breaker = addr(f"cb.breaker.{mint}")
    child = spl("mintTo", amount=amount, mint=mint, account=to, mintAuthority=breaker)
    return anchor("circuit_breaker", "mint_v0", {"args": {"amount": amount}}, mint=mint, to=to,
                  mint_authority=auth, circuit_breaker=breaker, children=[child])


def cb_transfer(source: str, to: str, amount: int, owner: str | None = None) -> Node:
    """circuit_breaker.transfer_v0 with its SPL transfer child."""
    breaker = addr(f"cb.breaker.{source}")
    child = spl("transfer", amount=amount, source=source, destination=to, authority=breaker)
    return anchor("circuit_breaker", "transfer_v0", {"args": {"amount": amount}}, **{"from": source},
                  to=to, owner=owner or addr("cb.owner"), circuit_breaker=breaker, children=[child])


def cb_burn(source: str, mint: str, amount: int, owner: str | None = None) -> Node:
    """circuit_breaker.burn_v0 with its SPL burn child."""
    breaker = addr(f"cb.breaker.{source}")
    child = spl("burn", amount=amount, account=source, mint=mint, authority=breaker)
    return anchor("circuit_breaker", "burn_v0", {"args": {"amount": amount}}, **{"from": source},
                  owner=owner or addr("cb.owner"), mint=mint, circuit_breaker=breaker, children=[child])


class TxSpec:
    """Collects top-level nodes and token accounts, then builds a Transaction."""

    def __init__(self, label: str = "tx", *, slot: int = SLOT, block_time: int | None = BLOCK_TIME,
                 err: object | None = None) -> None:
        self.signature = sig(label)
        self.slot, self.block_time, self.err = slot, block_time, err
        self.top: list[Node] = []
        self.tokens: dict[str, tuple[str, str, int]] = {}   # account -> (mint, owner, pre amount)

    def add(self, *nodes: Node) -> TxSpec:
        self.top.extend(nodes)
        return self

    def token(self, account: str, mint: str, owner: str, amount: int = 10**15) -> TxSpec:
        self.tokens[account] = (mint, owner, amount)
        return self

    def build(self) -> Transaction:
        keys: list[str] = [addr("fee_payer")]
        seen = set(keys)

        def note(k: str) -> None:
            if k not in seen:
                seen.add(k)
                keys.append(k)

        logs: list[str] = []
        post = {a: v[2] for a, v in self.tokens.items()}

        def make(node: Node, path: str, depth: int) -> Instruction:
            note(node.program_id)
            for a in node.accounts:
                note(a)
            logs.append(f"Program {node.program_id} invoke [{depth}]")
            logs.extend(node.logs)
            self._apply(node, post)
            ix = Instruction(path=path, program_id=node.program_id, accounts=list(node.accounts),
                             data=node.data, stack_height=depth)
            ix.children = [make(c, f"{path}.{i + 1}", depth + 1) for i, c in enumerate(node.children)]
            logs.append(f"Program {node.program_id} success")
            return ix

        tops = [make(n, str(i), 1) for i, n in enumerate(self.top)]
        index = {k: i for i, k in enumerate(keys)}
        pre_b, post_b = [], []
        for account, (mint, owner, amount) in self.tokens.items():
            note(account)
            index.setdefault(account, len(index))
            decimals = CFG.symbol_of(mint).decimals if CFG.symbol_of(mint) else 0
            pre_b.append(TokenBalance(index[account], account, mint, owner, amount, decimals, TOKEN_PROGRAM_ID))
            post_b.append(TokenBalance(index[account], account, mint, owner, post[account], decimals,
                                       TOKEN_PROGRAM_ID))
        return Transaction(
            signature=self.signature, slot=self.slot, block_time=self.block_time, fee=5000, err=self.err,
            version=0, account_keys=keys, num_signers=1, writable=[True] * len(keys), instructions=tops,
            log_messages=logs if self.err is None else logs[:2], pre_token_balances=pre_b,
            post_token_balances=post_b,
        )

    @staticmethod
    def _apply(node: Node, post: dict[str, int]) -> None:
        """Token balance effect of an SPL instruction (so post balances are consistent)."""
        if node.program_id != TOKEN_PROGRAM_ID:
            return
        tag, amount, acc = node.data[0], int.from_bytes(node.data[1:9], "little"), node.accounts
        if tag in (3, 12):
            src, dst = acc[0], acc[2 if tag == 12 else 1]
            if src in post:
                post[src] -= amount
            if dst in post:
                post[dst] += amount
        elif tag in (7, 14) and acc[1] in post:
            post[acc[1]] += amount
        elif tag in (8, 15) and acc[0] in post:
            post[acc[0]] -= amount


def price_log(price: int, expo: int, dc: int) -> str:
    return f"Program log: HNT Price is {price} * 10^{expo}, issuing {dc} data credits"
