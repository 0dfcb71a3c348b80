"""Program registry: (program id, discriminator[, slot]) -> compiled instruction decoder.

Why keyed by program id first: Anchor discriminators are name-only hashes and collide across
programs (`transfer_v0` in circuit_breaker / helium_sub_daos / voter_stake_registry). Why
slot ranges: account layouts of one instruction changed over time (issue_rewards_v0 before
and after HIP-138), so one program may carry several IDL layers, each valid for a slot range;
the newest layer covering the slot that knows the discriminator wins.

The default registry is built from the project's own program specs (schemas/programs/*.json,
see schemas/programs/README.md) plus SPL Token / Token-2022.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from functools import lru_cache
from pathlib import Path

from indexer.decode.anchor_idl import CompiledIdl, CompiledInstruction, ensure_compiled, load_idl
from indexer.decode.decoded import DecodedInstruction  # noqa: F401  (re-exported: contract location)
from indexer.decode.errors import DecodeError
from indexer.decode.spl_token import (
    PROGRAM_NAMES as TOKEN_PROGRAM_NAMES,
)
from indexer.decode.spl_token import (
    decode_token_instruction,
    encode_token_instruction,
)


class _AnchorProgram:
    """All IDL layers of one program, merged per slot interval into disc -> instruction tables."""

    __slots__ = ("name", "address", "layers", "_bounds", "_tables", "_latest", "_seq", "_last")

    def __init__(self, name: str, address: str):
        self.name = name
        self.address = address
        self.layers: list[tuple[int, int | None, int, CompiledIdl]] = []
        self._seq = 0
        self._bounds: list[int] = []
        self._tables: list[dict[bytes, CompiledInstruction]] = [{}]
        self._latest: dict[bytes, CompiledInstruction] = {}
        self._last = 0  # slots >= this use _latest (the common case: one bisect avoided)

    def add(self, compiled: CompiledIdl, from_slot: int, until_slot: int | None) -> None:
        self._seq += 1
        self.layers.append((from_slot, until_slot, self._seq, compiled))
        self._rebuild()

    def _rebuild(self) -> None:
        """Precompute one merged table per interval between layer boundaries (lookup = bisect + dict)."""
        bounds = sorted({b for f, u, _, _ in self.layers for b in (f, u) if b is not None and b > 0})
        starts = [0] + bounds
        tables = []
        order = sorted(self.layers, key=lambda lay: (lay[0], lay[2]))  # later from_slot, then later added, win
        for start in starts:
            merged: dict[bytes, CompiledInstruction] = {}
            for f, u, _, comp in order:
                if f <= start and (u is None or u > start):
                    merged.update(comp.by_disc)
            tables.append(merged)
        self._bounds = bounds
        self._tables = tables
        self._latest = tables[-1]
        self._last = bounds[-1] if bounds else 0

    def table(self, slot: int | None) -> dict[bytes, CompiledInstruction]:
        if slot is None or slot >= self._last:
            return self._latest
        return self._tables[bisect_right(self._bounds, slot)]

    def lookup(self, data: bytes, slot: int | None) -> CompiledInstruction:
        ix = self.table(slot).get(data[:8])
        if ix is None:
            if len(data) < 8:
                raise DecodeError("short_data", f"{len(data)} bytes, no 8-byte discriminator",
                                  raw=data, program_id=self.address)
            raise DecodeError("unknown_discriminator", f"{self.name}: discriminator {data[:8].hex()}",
                              raw=data, program_id=self.address)
        return ix

    def by_name(self, name: str, slot: int | None) -> CompiledInstruction:
        for ix in self.table(slot).values():
            if ix.name == name:
                return ix
        raise KeyError(f"{self.name} has no instruction {name!r} at slot {slot}")


def _spec_ix(ix: dict) -> dict:
    """Spec instruction (hex discriminator) -> 0.30 IDL instruction (byte-array discriminator)."""
    out = dict(ix)
    if isinstance(ix.get("discriminator"), str):
        out["discriminator"] = list(bytes.fromhex(ix["discriminator"]))
    return out


class ProgramRegistry:
    """Decoders for every known program; see module docstring."""

    def __init__(self) -> None:
        self._anchor: dict[str, _AnchorProgram] = {}
        self._names: dict[str, str] = dict(TOKEN_PROGRAM_NAMES)
        # program id -> (newest disc->instruction table, first slot it covers, era bounds, per-era tables)
        self._fast: dict[str, tuple[dict, int, list[int], list[dict]]] = {}

    # -- building
    def add_idl(self, idl: dict, program_id: str | None = None, from_slot: int = 0,
                until_slot: int | None = None, name: str | None = None) -> CompiledIdl:
        """Compile an IDL (0.30+ or legacy) and register it for [from_slot, until_slot)."""
        norm = load_idl(idl)
        pid = program_id or norm.address
        if not pid:
            raise ValueError("IDL has no address; pass program_id")
        prog_name = name or (self._anchor[pid].name if pid in self._anchor else norm.name)
        compiled = CompiledIdl(norm, prog_name)
        prog = self._anchor.get(pid)
        if prog is None:
            prog = self._anchor[pid] = _AnchorProgram(prog_name, pid)
        prog.add(compiled, from_slot, until_slot)
        self._names[pid] = prog_name
        self._fast[pid] = (prog._latest, prog._last, prog._bounds, prog._tables)
        return compiled

    def compile_all(self) -> int:
        """Compile every instruction's decoders now (they are otherwise compiled on first use); returns
        how many. For a process that forks workers: they inherit the compiled code."""
        seen = {id(ix): ix for prog in self._anchor.values() for _f, _u, _s, comp in prog.layers
                for ix in comp.by_disc.values()}
        for ix in seen.values():
            ensure_compiled(ix)
        return len(seen)

    def add_spec(self, spec: dict) -> None:
        """Register a project program spec (schemas/programs/*.json): base IDL plus slot eras."""
        pid = spec["address"]
        name = spec["name"]
        base = {"address": pid, "metadata": {"name": name, "version": spec.get("version"), "spec": "0.1.0"},
                "instructions": [_spec_ix(ix) for ix in spec["instructions"]], "types": spec.get("types", [])}
        self.add_idl(base, pid, 0, None, name)
        for era in spec.get("eras", []):
            layer = {"address": pid, "metadata": {"name": name, "spec": "0.1.0"},
                     "instructions": [_spec_ix(ix) for ix in era["instructions"]],
                     "types": spec.get("types", []) + era.get("types", [])}
            self.add_idl(layer, pid, int(era.get("from_slot") or 0), era.get("until_slot"), name)

    # -- queries
    def program_name(self, program_id: str) -> str | None:
        return self._names.get(program_id)

    def knows(self, program_id: str) -> bool:
        return program_id in self._names

    def program_ids(self) -> list[str]:
        return list(self._names)

    def instruction(self, program_id: str, data: bytes, slot: int | None = None) -> CompiledInstruction:
        """The compiled instruction (name, account list, arg types) that `data` selects."""
        prog = self._anchor.get(program_id)
        if prog is None:
            raise DecodeError("unknown_program", f"no spec for program {program_id}", raw=data,
                              program_id=program_id)
        return prog.lookup(data, slot)

    def decode(self, program_id: str, data: bytes, accounts: list[str],
               slot: int | None = None) -> DecodedInstruction:
        """Decode one instruction: name, args (canonical values), accounts by IDL name.

        Hot path: one dict lookup for the program, one for the discriminator, one call into the
        generated decoder (compiled on its first use, anchor_idl._lazy_decoders). Everything unusual (older slot eras, errors, SPL Token) takes _slow.
        """
        fast = self._fast.get(program_id)
        if fast is not None:
            latest, last, bounds, tables = fast
            if slot is None or slot >= last:
                ix = latest.get(data[:8])
            else:
                ix = tables[bisect_right(bounds, slot)].get(data[:8])
            if ix is not None:
                try:
                    return ix.decode_full(data, accounts)
                except DecodeError as e:
                    self._annotate(e, program_id, data, slot)
                    raise
        return self._slow(program_id, data, accounts, slot)

    def _slow(self, program_id: str, data: bytes, accounts: list[str], slot: int | None) -> DecodedInstruction:
        prog = self._anchor.get(program_id)
        if prog is None:
            if program_id in TOKEN_PROGRAM_NAMES:
                return decode_token_instruction(program_id, data, accounts)
            raise DecodeError("unknown_program", f"no spec for program {program_id}", raw=data,
                              program_id=program_id)
        ix = prog.lookup(data, slot)  # raises the typed error when unknown
        try:
            return ix.decode_full(data, accounts)
        except DecodeError as e:
            self._annotate(e, program_id, data, slot)
            raise

    def _annotate(self, e: DecodeError, program_id: str, data: bytes, slot: int | None) -> None:
        prog = self._anchor[program_id]
        ix = prog.table(slot).get(data[:8])
        e.raw = data
        e.program_id = program_id
        e.detail = f"{prog.name}.{ix.name if ix else '?'}: {e.detail}"

    def encode(self, program_id: str, instruction: str, args: dict, slot: int | None = None) -> bytes:
        """Raw instruction data for (instruction name, canonical args): the inverse of decode."""
        if program_id in TOKEN_PROGRAM_NAMES and program_id not in self._anchor:
            return encode_token_instruction(program_id, instruction, args)
        prog = self._anchor.get(program_id)
        if prog is None:
            raise KeyError(f"no spec for program {program_id}")
        return prog.by_name(instruction, slot).encode(args)

    def instruction_spec(self, program_id: str, instruction: str, slot: int | None = None) -> CompiledInstruction:
        """The compiled instruction by name at a slot: `.accounts` (IdlAccount name/writable/signer/
        optional), `.args` (normalized types), `.discriminator`, `.encode(args)`. KeyError when unknown."""
        prog = self._anchor.get(program_id)
        if prog is None:
            raise KeyError(program_id)
        return prog.by_name(instruction, slot)

    def account_names(self, program_id: str, instruction: str, slot: int | None = None) -> tuple[str, ...]:
        """IDL account names of an instruction at a slot (for building transactions in tests/simulator)."""
        prog = self._anchor.get(program_id)
        if prog is None:
            raise KeyError(program_id)
        return prog.by_name(instruction, slot).account_names


SPEC_DIR = Path(__file__).resolve().parents[2] / "schemas" / "programs"


def load_specs(directory: Path | None = None) -> list[dict]:
    """The project's program specs, sorted by file name."""
    d = directory or SPEC_DIR
    return [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))]


@lru_cache(maxsize=1)
def default_registry() -> ProgramRegistry:
    """The shared registry: every program spec under schemas/programs/ plus SPL Token/Token-2022."""
    reg = ProgramRegistry()
    for spec in load_specs():
        reg.add_spec(spec)
    return reg
