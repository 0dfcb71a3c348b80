"""Instruction constructors on top of the project's program registry.

WHY: instruction bytes and account order must be exactly what the project's decoder expects at
that slot, so they come from `indexer.decode.registry.default_registry()` (the program specs under
schemas/programs/), never from a second encoder here. This module only maps *named* accounts onto
the spec's order, fills the well-known program/sysvar accounts, and attaches the CPI children,
logs and ground-truth event notes that the simulator needs.

A few instructions have no public IDL (tuktuk run_task_v0, dc_auto_top.top_off_dc_v0, ...). When
the registry has no spec for one of them, `anchor_ix` falls back to the caller's explicit account
list and `sighash(name) + raw_args` (the name-only Anchor discriminator, no argument encoding).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from indexer.devchain import accounts as A
from indexer.devchain.txbuild import Ix

COMPRESSION_PROGRAM = "cmtDvXumGCrqC1Age74AVPhSRVXJMd8PJS91L8KbNCK"
BUBBLEGUM_PROGRAM = "BGUMAp9Gq7iTEuizy4pqaxsTyUCBK68MDfK752saRPUY"
NOOP_PROGRAM = "noopb9bkMVfRPU8AsbpTUg8AQkHtKwMYZiFUjNRtMmV"
TOKEN_METADATA_PROGRAM = "metaqbxxUerdq28cj1RbAWkYQm3ybzjb6a8bt518x1s"

# account name -> address, for accounts that are always the same program or sysvar
WELL_KNOWN = {
    "system_program": A.SYSTEM_PROGRAM,
    "token_program": A.TOKEN_PROGRAM,
    "associated_token_program": A.ATA_PROGRAM,
    "circuit_breaker_program": A.CIRCUIT_BREAKER,
    "data_credits_program": A.DATA_CREDITS,
    "helium_sub_daos_program": A.HELIUM_SUB_DAOS,
    "lazy_distributor_program": A.LAZY_DISTRIBUTOR,
    "no_emit_program": A.NO_EMIT,
    "vsr_program": A.VOTER_STAKE_REGISTRY,
    "compression_program": COMPRESSION_PROGRAM,
    "bubblegum_program": BUBBLEGUM_PROGRAM,
    "log_wrapper": NOOP_PROGRAM,
    "token_metadata_program": TOKEN_METADATA_PROGRAM,
    "sysvar_instructions": A.SYSVAR_INSTRUCTIONS,
    "instructions": A.SYSVAR_INSTRUCTIONS,
    "rent": A.SYSVAR_RENT,
    "clock": A.SYSVAR_CLOCK,
    "tuktuk_program": A.TUKTUK,
    "dao": A.DAO,
    "hnt_mint": A.HNT,
    "dc_mint": A.DC,
    "data_credits": A.DATA_CREDITS_ACCOUNT,
    "account_payer": A.DC_ACCOUNT_PAYER,
    "hnt_price_oracle": A.HNT_PRICE_FEED,
}


@dataclass(frozen=True, slots=True)
class AccountSpec:
    name: str
    writable: bool
    signer: bool
    optional: bool


@lru_cache(maxsize=1)
def registry():
    from indexer.decode.registry import default_registry

    return default_registry()


@lru_cache(maxsize=4096)
def _spec(program_id: str, name: str, slot: int | None) -> tuple[AccountSpec, ...] | None:
    reg = registry()
    getter = getattr(reg, "instruction_spec", None)
    try:
        if getter is not None:
            ix = getter(program_id, name, slot)
        else:
            prog = reg._anchor.get(program_id)  # no public accessor for the flags yet
            if prog is None:
                return None
            ix = prog.by_name(name, slot)
    except (KeyError, LookupError):
        return None
    except Exception as e:  # the registry raises its DecodeError for unknown names
        if type(e).__name__ == "DecodeError":
            return None
        raise
    return tuple(AccountSpec(a.name, bool(a.writable), bool(a.signer), bool(getattr(a, "optional", False)))
                 for a in ix.accounts)


def account_spec(program_id: str, name: str, slot: int | None) -> tuple[AccountSpec, ...] | None:
    """The spec's accounts of (program, instruction) at `slot`, or None when there is no spec."""
    return _spec(program_id, name, _bucket(program_id, slot))


@lru_cache(maxsize=1)
def _boundary_slots() -> list[int]:
    """Every slot where some layout may change: the era table plus each registry layer's bounds."""
    from indexer.decode import eras

    bounds = {0, *(b.slot for b in eras.BOUNDARIES.values())}
    for prog in getattr(registry(), "_anchor", {}).values():
        for layer in getattr(prog, "layers", []):
            bounds.update(x for x in layer[:2] if isinstance(x, int))
    return sorted(bounds)


def _bucket(program_id: str, slot: int | None) -> int | None:
    """Collapse slots to the era layer they fall in, so the lru cache stays small."""
    if slot is None:
        return None
    import bisect

    bounds = _boundary_slots()
    return bounds[max(0, bisect.bisect_right(bounds, slot) - 1)]


def sighash(name: str) -> bytes:
    return hashlib.sha256(f"global:{name}".encode()).digest()[:8]


def camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


class UnknownAccount(KeyError):
    pass


def anchor_ix(
    program_id: str,
    name: str,
    accounts: dict[str, str],
    args: dict,
    slot: int,
    *,
    default_account=None,
    children: list[Ix] | None = None,
    logs: tuple[str, ...] = (),
    events: list[dict] | None = None,
    remaining: list[tuple[str, bool, bool]] | None = None,
    fallback_accounts: list[tuple[str, bool, bool]] | None = None,
    raw_args: bytes = b"",
    cu: int = 20_000,
) -> Ix:
    """Build an Anchor instruction: data from the registry, account order from its spec.

    `accounts` maps spec names (or the last part of a flattened "group.name") to addresses;
    missing ones come from WELL_KNOWN, then Option accounts default to the program id (Anchor's
    "absent" marker), then `default_account(program_id, name, account_name, signer)`.
    """
    spec = account_spec(program_id, name, slot)
    if spec is None:
        if fallback_accounts is None:
            raise UnknownAccount(f"no program spec for {program_id} {name} and no fallback accounts")
        metas = list(fallback_accounts)
        data = sighash(name) + raw_args
    else:
        metas = []
        for acc in spec:
            short = acc.name.rsplit(".", 1)[-1]
            addr = accounts.get(acc.name) or accounts.get(short) or WELL_KNOWN.get(short)
            if addr is None and acc.optional:
                addr = program_id
            if addr is None:
                if default_account is None:
                    raise UnknownAccount(f"{name}: no address for account {acc.name}")
                addr = default_account(program_id, name, acc.name, acc.signer)
            metas.append((addr, acc.signer, acc.writable))
        data = registry().encode(program_id, name, args, slot)
    if remaining:
        metas += remaining
    return Ix(program_id, metas, data, name=camel(name), logs=tuple(logs), children=list(children or []),
              events=list(events or []), cu=cu)


# ---------------------------------------------------------------------------------------------
# SPL Token (data through the registry's spl-token encoder)


def _token_data(name: str, args: dict) -> bytes:
    return registry().encode(A.TOKEN_PROGRAM, name, args)


def _authority_metas(authority: str, multisig_signers: list[str] | None) -> list[tuple[str, bool, bool]]:
    if multisig_signers:
        return [(authority, False, False)] + [(s, True, False) for s in multisig_signers]
    return [(authority, True, False)]


def spl_burn(account: str, mint: str, authority: str, amount: int, *, checked: bool = False,
             multisig_signers: list[str] | None = None, events: list[dict] | None = None) -> Ix:
    if checked:
        data = _token_data("burnChecked", {"amount": amount, "decimals": A.DECIMALS[mint]})
    else:
        data = _token_data("burn", {"amount": amount})
    metas = [(account, False, True), (mint, False, True)] + _authority_metas(authority, multisig_signers)
    return Ix(A.TOKEN_PROGRAM, metas, data, name="BurnChecked" if checked else "Burn",
              token_op=("burn", account, amount), events=list(events or []), cu=4753)


def spl_mint_to(mint: str, account: str, authority: str, amount: int, *, checked: bool = False,
                multisig_signers: list[str] | None = None, events: list[dict] | None = None) -> Ix:
    if checked:
        data = _token_data("mintToChecked", {"amount": amount, "decimals": A.DECIMALS[mint]})
    else:
        data = _token_data("mintTo", {"amount": amount})
    metas = [(mint, False, True), (account, False, True)] + _authority_metas(authority, multisig_signers)
    return Ix(A.TOKEN_PROGRAM, metas, data, name="MintToChecked" if checked else "MintTo",
              token_op=("mint", mint, account, amount), events=list(events or []), cu=4538)


def spl_transfer(source: str, destination: str, authority: str, amount: int, *, mint: str | None = None,
                 checked: bool = False, multisig_signers: list[str] | None = None,
                 events: list[dict] | None = None) -> Ix:
    if checked:
        assert mint is not None
        data = _token_data("transferChecked", {"amount": amount, "decimals": A.DECIMALS[mint]})
        metas = [(source, False, True), (mint, False, False), (destination, False, True)]
    else:
        data = _token_data("transfer", {"amount": amount})
        metas = [(source, False, True), (destination, False, True)]
    metas += _authority_metas(authority, multisig_signers)
    return Ix(A.TOKEN_PROGRAM, metas, data, name="TransferChecked" if checked else "Transfer",
              token_op=("transfer", source, destination, amount), events=list(events or []), cu=4645)
