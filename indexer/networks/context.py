"""Per-transaction state shared by the Helium and Render rules.

Built once per transaction that touches a watched program or mint, so the rules can ask
cheap questions repeatedly: token account -> mint/owner, the logs an instruction printed,
whether the transaction invokes Wormhole, and build a FlowEvent with the common fields
(signature, slot, day, outer/parent instruction, commitment) filled the same way everywhere.
"""

from __future__ import annotations

from functools import lru_cache

import orjson

from indexer.decode.model import Instruction, Transaction
from indexer.networks.config import NetworkConfig, anchor_discriminator
from indexer.networks.events import SCHEMA_VERSION, FlowEvent, utc_day
from indexer.networks.tokens import Balances

# Names of instructions outside the Helium IDLs that the rules and records refer to.
_FOREIGN_NAMES = {
    ("tuktuk", anchor_discriminator("run_task_v0")): "run_task_v0",
}


class TxContext:
    """Everything a rule needs about one transaction, computed lazily and at most once.

    Lazy members are plain slots checked for None (not functools.cached_property, whose first access
    per instance costs several microseconds: one TxContext is built per watched transaction).
    """

    __slots__ = ("tx", "config", "commitment", "known_names", "block_day", "_record_base", "_record_fields",
                 "names", "_balances", "_wormhole", "_logs_by_path")

    def __init__(self, tx: Transaction, config: NetworkConfig, commitment: str,
                 known_names: dict[tuple[str, bytes], tuple[str, str]] | None = None) -> None:
        self.tx = tx
        self.config = config
        self.commitment = commitment
        self.known_names = known_names or {}
        self.block_day = _day(tx.block_time // 86_400) if tx.block_time is not None else ""
        self._record_base: dict | None = None
        self._record_fields: tuple | None = None
        self.names: dict[str, tuple[str, str]] = {}   # path -> (program, instruction)
        self._balances: Balances | None = None
        self._wormhole: str | None = None
        self._logs_by_path: dict[str, list[str]] | None = None

    def record_fields(self) -> tuple[str, int, int | None, str | None, str]:
        """(signature, slot, block_time, tx_error, commitment): the per-transaction fields of records."""
        got = self._record_fields
        if got is None:
            tx = self.tx
            got = self._record_fields = (tx.signature, tx.slot, tx.block_time,
                                         None if tx.err is None else orjson.dumps(tx.err, default=str).decode(),
                                         self.commitment)
        return got

    def record_base(self) -> dict:
        """A fresh record dict holding the per-transaction fields of instruction records."""
        base = self._record_base
        if base is None:
            tx = self.tx
            base = self._record_base = {
                "event_id": "", "network": "", "signature": tx.signature, "slot": tx.slot, "block_time": tx.block_time,
                "ix_path": "", "program_id": "", "program": "", "instruction": "", "args": None,
                "accounts": None, "extra_accounts": None, "outer_program": "", "outer_instruction": "",
                "parent_instruction": "",
                "tx_error": None if tx.err is None else orjson.dumps(tx.err, default=str).decode(),
                "commitment": self.commitment, "schema_version": SCHEMA_VERSION,
            }
        return dict(base)

    @property
    def balances(self) -> Balances:
        got = self._balances
        if got is None:
            got = self._balances = Balances(self.tx)
        return got

    @property
    def wormhole(self) -> str:
        """Name of the first Wormhole program the transaction invokes, else ""."""
        got = self._wormhole
        if got is None:
            got = ""
            worm = self.config.render.wormhole_programs
            for ix in self.tx.walk():
                if ix.program_id in worm:
                    got = worm[ix.program_id]
                    break
            self._wormhole = got
        return got

    def logs(self, path: str) -> list[str]:
        """Log lines printed by the instruction at `path` itself (not by its CPIs)."""
        got = self._logs_by_path
        if got is None:
            got = self._logs_by_path = logs_by_path(self.tx)
        return got.get(path, [])

    # --- names -----------------------------------------------------------------------------
    def program_name(self, program_id: str) -> str:
        return self.config.program_names.get(program_id, program_id)

    def name_of(self, ix: Instruction) -> tuple[str, str]:
        """(program, instruction) of any instruction; instruction is "" when unknown."""
        got = self.names.get(ix.path)
        if got is not None:
            return got
        program = self.program_name(ix.program_id)
        name = ""
        if ix.parsed and isinstance(ix.parsed, dict):
            name = str(ix.parsed.get("type", ""))
        elif ix.data and len(ix.data) >= 8:
            disc = bytes(ix.data[:8])
            known = self.known_names.get((ix.program_id, disc))
            name = known[1] if known else _FOREIGN_NAMES.get((program, disc), "")
        self.names[ix.path] = (program, name)
        return program, name

    def qualified(self, ix: Instruction) -> str:
        program, name = self.name_of(ix)
        return f"{program}.{name}" if name else program

    # --- events ----------------------------------------------------------------------------
    def event(self, ix: Instruction, ancestors: tuple[Instruction, ...], *, network: str,
              flow_class: str, subtype: str, mint: str, amount: int, leg: int | None = None,
              day: str | None = None, epoch: int | None = None, payer_account: str = "",
              payer_owner: str = "", recipient_account: str = "", recipient_owner: str = "",
              sub_dao: str = "", reason: str = "", usd_price: str | None = None) -> FlowEvent:
        """A FlowEvent keyed on `ix` (the flow instruction), common fields filled uniformly."""
        program, name = self.name_of(ix)
        outer = ancestors[0] if ancestors else ix
        outer_program, outer_name = self.name_of(outer)
        info = self.config.symbol_of(mint)
        if info is not None:
            symbol, decimals = info.symbol, info.decimals
        else:
            symbol, decimals = "", self._decimals_of(mint)
        if not payer_owner:
            payer_owner = self.balances.owner(payer_account) if payer_account else ""
        if not recipient_owner:
            recipient_owner = self.balances.owner(recipient_account) if recipient_account else ""
        tx = self.tx
        # positional: FlowEvent's field order (signature ... reason); ~25% cheaper than 29 keywords
        return FlowEvent(
            tx.signature, ix.path, network, str(flow_class), str(subtype), tx.slot, int(tx.block_time or 0),
            day or self.block_day, ix.program_id, program, name, mint, symbol, int(amount), decimals, leg,
            epoch, outer_program, outer_name, self.qualified(ancestors[-1]) if ancestors else "", None,
            usd_price, payer_owner, payer_account, recipient_owner, recipient_account, sub_dao,
            self.commitment, reason,
        )

    def _decimals_of(self, mint: str) -> int:
        for b in (*self.tx.pre_token_balances, *self.tx.post_token_balances):
            if b.mint == mint:
                return b.decimals
        return 0


@lru_cache(maxsize=4096)
def _day(unix_day: int) -> str:
    """UTC day string of a unix day number (cached: a block stream stays on a few days)."""
    return utc_day(unix_day * 86_400)


def logs_by_path(tx: Transaction) -> dict[str, list[str]]:
    """Attribute each log line to the instruction that printed it.

    Every `Program <id> invoke [n]` line starts the next instruction in execution order
    (`Transaction.walk()`); precompiles (Ed25519, secp256k1) never log, so instructions whose
    program does not match the invoke line are skipped. Stops at `Log truncated`.
    """
    order = list(tx.walk())
    out: dict[str, list[str]] = {}
    stack: list[str] = []
    pos = 0
    for line in tx.log_messages:
        if line.startswith(("Program log: ", "Program data: ", "Program return: ")):
            if stack:
                out.setdefault(stack[-1], []).append(line)
        elif line.startswith("Program "):
            if " invoke [" in line:
                pid = line[8:line.index(" invoke [")]
                while pos < len(order) and order[pos].program_id != pid:
                    pos += 1
                if pos >= len(order):
                    break
                stack.append(order[pos].path)
                pos += 1
            elif (line.endswith(" success") or " failed" in line) and stack:
                stack.pop()
        elif line == "Log truncated":
            break
        elif stack:
            out.setdefault(stack[-1], []).append(line)
    return out
