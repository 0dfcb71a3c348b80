"""Build real Solana transactions (wire bytes + status meta) from an instruction tree.

WHY our own compiler instead of `MessageV0.try_compile`: the meta must describe CPIs (inner
instructions with stackHeight), whose accounts must exist in the message, and the token balances
must follow the instructions as they execute. So we compile once, from the whole tree, keep the
account index map, and serialize the message ourselves (the format is small and fixed); tests check
every transaction with `solders.transaction.VersionedTransaction.from_bytes` and the signatures
verify against the message bytes.

The produced `TxRecord` is encoding-neutral: `indexer.devchain.render` turns it into the JSON
shapes of getTransaction / getBlock (json, jsonParsed, base64, base58).
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field
from itertools import islice

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from indexer.devchain import accounts as A

# ---------------------------------------------------------------------------------------------
# instruction tree


@dataclass(slots=True)
class Ix:
    """One instruction invocation; `children` are the CPIs it makes, in execution order.

    `token_op` is set on spl-token nodes: ("burn", account, amount), ("mint", mint, account,
    amount) or ("transfer", source, destination, amount); the builder applies it to the token
    ledger so pre/post token balances follow the instructions. `lamports` is a system transfer
    (source, destination, lamports).
    """

    program_id: str
    metas: list[tuple[str, bool, bool]]          # (address, is_signer, is_writable)
    data: bytes
    name: str | None = None                      # Anchor/SPL "Instruction: <Name>" log
    logs: tuple[str, ...] = ()                   # extra "Program log: ..." lines
    children: list[Ix] = field(default_factory=list)
    token_op: tuple | None = None
    lamports: tuple[str, str, int] | None = None
    cu: int = 3000
    events: list[dict] = field(default_factory=list)   # ground-truth notes keyed on this instruction


def meta(addr: str, signer: bool = False, writable: bool = False) -> tuple[str, bool, bool]:
    return (addr, signer, writable)


# ---------------------------------------------------------------------------------------------
# token ledger


class TokenLedger:
    """Balances of every SPL token account the simulator has created (address -> [mint, owner, amount])."""

    def __init__(self) -> None:
        self.accounts: dict[str, list] = {}

    def ensure(self, address: str, mint: str, owner: str, initial: int = 0) -> str:
        if address not in self.accounts:
            self.accounts[address] = [mint, owner, initial]
        return address

    def amount(self, address: str) -> int:
        return self.accounts[address][2]

    def mint_of(self, address: str) -> str:
        return self.accounts[address][0]

    def apply(self, op: tuple) -> None:
        kind = op[0]
        if kind == "burn":
            _, acct, amount = op
            self._debit(acct, amount)
        elif kind == "mint":
            _, _mint, acct, amount = op
            self.accounts[acct][2] += amount
        elif kind == "transfer":
            _, src, dst, amount = op
            self._debit(src, amount)
            self.accounts[dst][2] += amount
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown token op {op!r}")

    def _debit(self, acct: str, amount: int) -> None:
        entry = self.accounts[acct]
        if entry[2] < amount:
            raise ValueError(f"simulated token account {acct} would go negative ({entry[2]} - {amount})")
        entry[2] -= amount


# ---------------------------------------------------------------------------------------------
# the encoding-neutral transaction record


@dataclass(slots=True)
class TokenBal:
    account_index: int
    mint: str
    owner: str
    amount: int
    decimals: int
    program_id: str = A.TOKEN_PROGRAM


@dataclass(slots=True)
class CompiledIx:
    program_index: int
    accounts: bytes                               # indexes into the full key list
    data: bytes
    stack_height: int | None = None               # None for top-level (as the RPC prints it)


@dataclass(slots=True)
class TxRecord:
    """Everything getTransaction returns about one transaction, independent of the encoding."""

    signature: str
    signatures: list[str]
    wire: bytes
    version: str | int                            # "legacy" or 0
    header: tuple[int, int, int]
    static_keys: list[str]
    loaded_writable: list[str]
    loaded_readonly: list[str]
    lookups: list[tuple[str, bytes, bytes]]       # (table, writable idx, readonly idx)
    recent_blockhash: str
    instructions: list[CompiledIx]
    inner: list[tuple[int, list[CompiledIx]]]     # (top-level index, CPIs in order)
    err: object | None
    fee: int
    pre_balances: list[int]
    post_balances: list[int]
    logs: list[str]
    pre_token: list[TokenBal]
    post_token: list[TokenBal]
    compute_units: int
    memo: str | None = None
    slot: int = 0
    block_time: int | None = None
    parsed_cache: dict = field(default_factory=dict)   # rendered JSON per encoding (server cache)

    @property
    def account_keys(self) -> list[str]:
        return self.static_keys + self.loaded_writable + self.loaded_readonly

    def is_writable(self, index: int) -> bool:
        n_static = len(self.static_keys)
        if index >= n_static:
            return index < n_static + len(self.loaded_writable)
        n_sig, ro_sig, ro_unsig = self.header
        if index < n_sig:
            return index < n_sig - ro_sig
        return index < n_static - ro_unsig

    def is_signer(self, index: int) -> bool:
        return index < self.header[0]

    def mentions(self) -> set[str]:
        return set(self.account_keys)

    @property
    def wire_base64(self) -> str:
        return base64.b64encode(self.wire).decode()


# ---------------------------------------------------------------------------------------------
# serialization helpers


def compact_u16(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def b58encode(raw: bytes) -> str:
    """Bitcoin-alphabet base58 (instruction data in the `json` encodings, signatures)."""
    n = int.from_bytes(raw, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        n = n * 58 + _B58_INDEX[ch]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + body


def serialize_message(version, header, static_keys: list[str], recent_blockhash: str,
                      top: list[CompiledIx], lookups: list[tuple[str, bytes, bytes]]) -> bytes:
    """Solana message wire format (legacy, or v0 with the 0x80 prefix and lookups)."""
    msg = bytearray()
    if version != "legacy":
        msg.append(0x80)
    msg += bytes(header)
    msg += compact_u16(len(static_keys))
    for a in static_keys:
        msg += bytes(Pubkey.from_string(a))
    msg += bytes(Pubkey.from_string(recent_blockhash))
    msg += compact_u16(len(top))
    for c in top:
        msg.append(c.program_index)
        msg += compact_u16(len(c.accounts)) + c.accounts
        msg += compact_u16(len(c.data)) + c.data
    if version != "legacy":
        msg += compact_u16(len(lookups))
        for table, wi, ri in lookups:
            msg += bytes(Pubkey.from_string(table))
            msg += compact_u16(len(wi)) + wi + compact_u16(len(ri)) + ri
    return bytes(msg)


# ---------------------------------------------------------------------------------------------
# the builder


@dataclass(slots=True)
class LookupTable:
    address: str
    addresses: list[str]
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {a: i for i, a in enumerate(self.addresses)}


LOG_LIMIT_CU = 1_400_000
PACKET_DATA_SIZE = 1232          # Solana's maximum serialized transaction size


class TxTooLarge(ValueError):
    """The transaction would not fit a Solana packet (raised before anything is executed)."""


class TxBuilder:
    """Compiles instruction trees into signed transactions and their metas, against a token ledger."""

    def __init__(self, tokens: TokenLedger, lamports: dict[str, int] | None = None) -> None:
        self.tokens = tokens
        self.lamports: dict[str, int] = lamports if lamports is not None else {}

    # -- account set -------------------------------------------------------------------------
    @staticmethod
    def _ensure_child_accounts(top: list[Ix]) -> None:
        """A CPI can only touch accounts the transaction carries: append any account a descendant
        uses but its top-level ancestor does not list (as Anchor remaining accounts)."""
        for t in top:
            have = {m[0] for m in t.metas}
            extra: list[tuple[str, bool, bool]] = []
            stack = list(t.children)
            while stack:
                c = stack.pop()
                for addr in [c.program_id] + [m[0] for m in c.metas]:
                    if addr not in have:
                        have.add(addr)
                        writable = any(m[0] == addr and m[2] for m in c.metas)
                        extra.append((addr, False, writable))
                stack.extend(c.children)
            if extra:
                t.metas = list(t.metas) + extra

    def build(
        self,
        *,
        payer: Keypair,
        signers: list[Keypair] = (),
        keyring=None,
        instructions: list[Ix],
        recent_blockhash: str,
        version: str | int = 0,
        lookup: LookupTable | None = None,
        fail_at: int | None = None,
        slot: int = 0,
        block_time: int | None = None,
        priority_fee: int = 0,
        payer_address: str | None = None,
    ) -> TxRecord:
        """Compile, sign and "execute" (token ledger, logs, meta). `fail_at` = index of the
        top-level instruction that fails (custom error 1): no balance changes, fee still paid."""
        self._ensure_child_accounts(instructions)
        payer_addr = payer_address or str(payer.pubkey())
        kp_by_addr = {payer_addr: payer}
        kp_by_addr.update({str(k.pubkey()): k for k in signers})

        # merge flags over every use (top-level metas + every descendant's writable flag)
        flags: dict[str, list[bool]] = {payer_addr: [True, True]}
        invoked: set[str] = set()
        order: list[str] = [payer_addr]

        def note(addr: str, signer: bool, writable: bool) -> None:
            f = flags.get(addr)
            if f is None:
                flags[addr] = [signer, writable]
                order.append(addr)
            else:
                f[0] |= signer
                f[1] |= writable

        for t in instructions:
            for addr, s, w in t.metas:
                note(addr, s, w)
            note(t.program_id, False, False)
            invoked.add(t.program_id)
            stack = list(t.children)
            while stack:
                c = stack.pop()
                for addr, _s, w in c.metas:
                    note(addr, False, w)
                note(c.program_id, False, False)
                stack.extend(c.children)
        for addr in kp_by_addr:
            if addr in flags and not flags[addr][0]:
                raise ValueError(f"keypair {addr} given but not a signer of any instruction")
        for addr, (s, _w) in flags.items():
            if s and addr not in kp_by_addr:
                kp = keyring(addr) if keyring is not None else None
                if kp is None:
                    raise ValueError(f"instruction needs signer {addr} but no keypair was given")
                kp_by_addr[addr] = kp

        loaded_w: list[str] = []
        loaded_r: list[str] = []
        w_idx = bytearray()
        r_idx = bytearray()
        static_ws, static_rs, static_wu, static_ru = [], [], [], []
        for addr in order:
            s, w = flags[addr]
            if addr == payer_addr:
                continue
            if (version != "legacy" and lookup is not None and not s and addr not in invoked
                    and addr in lookup.index):
                if w:
                    loaded_w.append(addr)
                    w_idx.append(lookup.index[addr])
                else:
                    loaded_r.append(addr)
                    r_idx.append(lookup.index[addr])
                continue
            (static_ws if s and w else static_rs if s else static_wu if w else static_ru).append(addr)
        static_keys = [payer_addr] + static_ws + static_rs + static_wu + static_ru
        header = (1 + len(static_ws) + len(static_rs), len(static_rs), len(static_ru))
        all_keys = static_keys + loaded_w + loaded_r
        if len(all_keys) > 256:
            raise ValueError("too many accounts in one transaction")
        index = {a: i for i, a in enumerate(all_keys)}
        lookups = [(lookup.address, bytes(w_idx), bytes(r_idx))] if (w_idx or r_idx) else []

        def compile_ix(ix: Ix, stack_height: int | None) -> CompiledIx:
            return CompiledIx(index[ix.program_id], bytes(index[m[0]] for m in ix.metas), ix.data, stack_height)

        top = [compile_ix(t, None) for t in instructions]

        # -- message bytes and signatures ---------------------------------------------------------
        msg = serialize_message(version, header, static_keys, recent_blockhash, top, lookups)
        sig_objs = [kp_by_addr[a].sign_message(msg) for a in static_keys[: header[0]]]
        sigs = [bytes(s) for s in sig_objs]
        wire = compact_u16(len(sigs)) + b"".join(sigs) + msg
        sig_strs = [str(s) for s in sig_objs]
        if len(wire) > PACKET_DATA_SIZE:
            raise TxTooLarge(f"{len(wire)} bytes > {PACKET_DATA_SIZE} ({version})")

        # -- execution: inner instructions, logs, token balances, lamports -----------------------
        fee = 5000 * len(sigs) + priority_fee
        token_idx = [(i, a) for i, a in enumerate(all_keys) if a in self.tokens.accounts]
        pre_token = [self._bal(i, a) for i, a in token_idx]
        pre_lamports = [self._lamports(a) for a in all_keys]
        logs: list[str] = []
        inner: list[tuple[int, list[CompiledIx]]] = []
        cu_total = 0
        err = None
        snapshot = {a: self.tokens.accounts[a][2] for _, a in token_idx}
        # only the transaction's own keys can change (all present after pre_lamports): copying the whole
        # map per transaction made generation quadratic (it grows with every address ever seen)
        lam_snapshot = {a: self.lamports[a] for a in all_keys}
        lam_count = len(self.lamports)
        for i, t in enumerate(instructions):
            if fail_at is not None and i == fail_at:
                logs.append(f"Program {t.program_id} invoke [1]")
                if t.name:
                    logs.append(f"Program log: Instruction: {t.name}")
                logs.append("Program log: AnchorError occurred. Error Code: ConstraintRaw. Error Number: 2003. "
                            "Error Message: A raw constraint was violated.")
                logs.append(f"Program {t.program_id} consumed {t.cu} of {LOG_LIMIT_CU - cu_total} compute units")
                logs.append(f"Program {t.program_id} failed: custom program error: 0x7d3")
                cu_total += t.cu
                err = {"InstructionError": [i, {"Custom": 2003}]}
                break
            cpis: list[CompiledIx] = []
            cu_total += self._execute(t, 1, logs, cpis, compile_ix, cu_total)
            if cpis:
                inner.append((i, cpis))
        if err is not None:
            # a failed transaction changes nothing but the fee payer's lamports
            for a, amt in snapshot.items():
                self.tokens.accounts[a][2] = amt
            for extra in list(islice(reversed(self.lamports), len(self.lamports) - lam_count)):
                del self.lamports[extra]          # keys first seen during execution (dicts keep order)
            self.lamports.update(lam_snapshot)
            inner = []
        self.lamports[payer_addr] = self._lamports(payer_addr) - fee
        post_token = [self._bal(i, a) for i, a in token_idx]
        post_lamports = [self._lamports(a) for a in all_keys]
        memo = self._memo(instructions)
        return TxRecord(
            signature=sig_strs[0], signatures=sig_strs, wire=wire, version=version, header=header,
            static_keys=static_keys, loaded_writable=loaded_w, loaded_readonly=loaded_r, lookups=lookups,
            recent_blockhash=recent_blockhash, instructions=top, inner=inner, err=err, fee=fee,
            pre_balances=pre_lamports, post_balances=post_lamports, logs=logs, pre_token=pre_token,
            post_token=post_token, compute_units=cu_total, memo=memo, slot=slot, block_time=block_time,
        )

    # -- execution helpers ---------------------------------------------------------------------
    def _execute(self, ix: Ix, depth: int, logs: list[str], cpis: list[CompiledIx], compile_ix, used: int) -> int:
        pid = ix.program_id
        logs.append(f"Program {pid} invoke [{depth}]")
        if pid == A.COMPUTE_BUDGET_PROGRAM:
            logs.append(f"Program {pid} success")
            return 150
        if ix.name:
            logs.append(f"Program log: Instruction: {ix.name}")
        for line in ix.logs:
            logs.append(f"Program log: {line}")
        if ix.token_op is not None:
            self.tokens.apply(ix.token_op)
        if ix.lamports is not None:
            src, dst, lam = ix.lamports
            self.lamports[src] = self._lamports(src) - lam
            self.lamports[dst] = self._lamports(dst) + lam
        cu = ix.cu
        for c in ix.children:
            cpis.append(compile_ix(c, depth + 1))
            cu += self._execute(c, depth + 1, logs, cpis, compile_ix, used + cu)
        if pid not in (A.SYSTEM_PROGRAM,):
            logs.append(f"Program {pid} consumed {cu} of {LOG_LIMIT_CU - used} compute units")
        logs.append(f"Program {pid} success")
        return cu

    def _bal(self, index: int, addr: str) -> TokenBal:
        mint, owner, amount = self.tokens.accounts[addr]
        return TokenBal(index, mint, owner, amount, A.DECIMALS.get(mint, 0))

    def _lamports(self, addr: str) -> int:
        v = self.lamports.get(addr)
        if v is None:
            if addr in self.tokens.accounts:
                v = 2_039_280
            elif addr in _EXECUTABLES:
                v = 1_141_440
            else:
                # stable pseudo-random wallet balance derived from the address
                v = 10_000_000_000 + int.from_bytes(bytes(Pubkey.from_string(addr))[:3], "little") * 1000
            self.lamports[addr] = v
        return v

    @staticmethod
    def _memo(instructions: list[Ix]) -> str | None:
        memos = []
        for t in instructions:
            if t.program_id in (A.MEMO_PROGRAM, A.MEMO_PROGRAM_V1):
                memos.append(f"[{len(t.data)}] {t.data.decode('utf-8', 'replace')}")
        return "; ".join(memos) if memos else None


_EXECUTABLES = {
    A.SYSTEM_PROGRAM, A.TOKEN_PROGRAM, A.ATA_PROGRAM, A.COMPUTE_BUDGET_PROGRAM, A.MEMO_PROGRAM,
    A.DATA_CREDITS, A.HELIUM_SUB_DAOS, A.LAZY_DISTRIBUTOR, A.CIRCUIT_BREAKER, A.TUKTUK, A.NO_EMIT,
    A.HELIUM_ENTITY_MANAGER, A.HEXBOOSTING, A.TREASURY_MANAGEMENT, A.FANOUT, A.MINI_FANOUT,
    A.DC_AUTO_TOP, A.REWARDS_ORACLE, A.UNRELATED_PROGRAM, A.WORMHOLE_CORE, A.WORMHOLE_TOKEN_BRIDGE,
}


# ---------------------------------------------------------------------------------------------
# native instructions the simulator encodes itself (not Anchor, not SPL Token: trivial layouts)


def compute_unit_limit(units: int) -> Ix:
    return Ix(A.COMPUTE_BUDGET_PROGRAM, [], bytes([2]) + struct.pack("<I", units))


def compute_unit_price(micro_lamports: int) -> Ix:
    return Ix(A.COMPUTE_BUDGET_PROGRAM, [], bytes([3]) + struct.pack("<Q", micro_lamports))


def system_transfer(src: str, dst: str, lamports: int) -> Ix:
    return Ix(A.SYSTEM_PROGRAM, [meta(src, True, True), meta(dst, False, True)],
              struct.pack("<IQ", 2, lamports), lamports=(src, dst, lamports), cu=150)


def memo(text: str, signer: str | None = None) -> Ix:
    metas = [meta(signer, True, False)] if signer else []
    data = text.encode()
    return Ix(A.MEMO_PROGRAM, metas, data, logs=(f'Memo (len {len(data)}): "{text}"',), cu=2000 + len(data) * 10)
