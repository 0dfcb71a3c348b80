"""Network label data (program ids, mints, wallets, correction lists) loaded at run time.

The facts live in `schemas/networks/<network>.json` so that an analyst can add a burn wallet,
a correction signature or a Wormhole program without touching code: pass extra JSON files
(same shape, only the keys to add) and they are merged in. Merge rule: objects merge key by
key, lists are appended (duplicates dropped), scalars are replaced. Keys starting with `$`
are comments.

The loaded form is a `NetworkConfig` of frozensets and dicts, built once, because the
classifier consults it for every instruction of every transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import orjson

_DATA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "networks"
NETWORK_FILES = ("helium.json", "render.json")


def anchor_discriminator(name: str) -> bytes:
    """Anchor instruction discriminator: sha256("global:<snake_name>")[:8]."""
    return hashlib.sha256(f"global:{name}".encode()).digest()[:8]


def _strip_comments(value):
    if isinstance(value, dict):
        return {k: _strip_comments(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_comments(v) for v in value]
    return value


def merge(base: dict, extra: dict) -> dict:
    """Merge `extra` into a copy of `base` (objects by key, lists appended, scalars replaced)."""
    out = dict(base)
    for key, value in extra.items():
        current = out.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            out[key] = merge(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            seen = [orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in current]
            out[key] = current + [v for v in value
                                  if orjson.dumps(v, option=orjson.OPT_SORT_KEYS) not in seen]
        else:
            out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class MintInfo:
    symbol: str
    mint: str
    decimals: int


@dataclass(frozen=True)
class HeliumConfig:
    mints: dict[str, MintInfo]                 # by mint address
    programs: dict[str, str]                   # program id -> canonical name
    look_through: dict[str, str]               # program id -> name (never a Helium parent)
    sub_daos: dict[str, str]                   # sub-DAO address -> "iot" | "mobile"
    emission_destinations: dict[str, str]      # token account -> subtype
    emission_owner_destinations: dict[str, str]  # owner -> subtype
    dc_usd: Decimal
    mobile_topup_raw: int
    mobile_topup_end_day: str
    program_ids: frozenset[str] = field(init=False)
    _by_symbol: dict[str, str] = field(init=False, repr=False)
    _by_name: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "program_ids", frozenset(self.programs))
        object.__setattr__(self, "_by_symbol", {i.symbol: i.mint for i in self.mints.values()})
        object.__setattr__(self, "_by_name", {n: pid for pid, n in self.programs.items()})

    def program_id(self, name: str) -> str:
        return self._by_name[name]

    def mint_of(self, symbol: str) -> str:
        return self._by_symbol[symbol]


@dataclass(frozen=True)
class BurnWallet:
    owner: str
    token_accounts: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class RenderConfig:
    mint: MintInfo
    token_programs: dict[str, str]             # program id -> name
    burn_wallets: tuple[BurnWallet, ...]
    wormhole_programs: dict[str, str]          # program id -> name
    correction_signatures: frozenset[str]
    labels: dict[str, str]
    burn_owners: frozenset[str] = field(init=False)
    burn_accounts: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "burn_owners", frozenset(w.owner for w in self.burn_wallets))
        object.__setattr__(self, "burn_accounts",
                           frozenset(a for w in self.burn_wallets for a in w.token_accounts))


@dataclass(frozen=True)
class NetworkConfig:
    helium: HeliumConfig
    render: RenderConfig
    token_programs: dict[str, str]             # SPL Token + Token-2022 ids -> name
    program_names: dict[str, str] = field(init=False)  # every known program id -> name

    def __post_init__(self) -> None:
        names = {**self.render.wormhole_programs, **self.helium.look_through, **self.token_programs,
                 **self.helium.programs}
        object.__setattr__(self, "program_names", names)

    def symbol_of(self, mint: str) -> MintInfo | None:
        info = self.helium.mints.get(mint)
        if info is None and mint == self.render.mint.mint:
            return self.render.mint
        return info


def _mints(raw: dict) -> dict[str, MintInfo]:
    return {v["mint"]: MintInfo(sym, v["mint"], int(v["decimals"])) for sym, v in raw.items()}


def _helium(raw: dict) -> HeliumConfig:
    consts = raw.get("constants", {})
    return HeliumConfig(
        mints=_mints(raw["mints"]),
        programs={pid: name for name, pid in raw["programs"].items()},
        look_through={pid: name for name, pid in raw.get("look_through_programs", {}).items()},
        sub_daos=dict(raw.get("sub_daos", {})),
        emission_destinations=dict(raw.get("emission_destinations", {})),
        emission_owner_destinations=dict(raw.get("emission_owner_destinations", {})),
        dc_usd=Decimal(str(consts.get("dc_usd", "0.00001"))),
        mobile_topup_raw=int(consts.get("mobile_treasury_topup_raw", 1223628691983)),
        mobile_topup_end_day=str(consts.get("mobile_treasury_topup_end_day", "2025-08-01")),
    )


def _render(raw: dict) -> RenderConfig:
    (mint,) = _mints(raw["mints"]).values()
    return RenderConfig(
        mint=mint,
        token_programs={pid: name for name, pid in raw["token_programs"].items()},
        burn_wallets=tuple(BurnWallet(w["owner"], tuple(w.get("token_accounts", ())), w.get("label", ""))
                           for w in raw.get("burn_wallets", [])),
        wormhole_programs={pid: name for name, pid in raw.get("wormhole_programs", {}).items()},
        correction_signatures=frozenset(c["signature"] if isinstance(c, dict) else c
                                        for c in raw.get("correction_signatures", [])),
        labels=dict(raw.get("labels", {})),
    )


def load_raw(extra_files: Iterable[str | Path] = ()) -> dict[str, dict]:
    """The merged label data per network, as plain dicts (comments removed)."""
    data: dict[str, dict] = {}
    for name in NETWORK_FILES:
        doc = _strip_comments(orjson.loads((_DATA_DIR / name).read_bytes()))
        data[doc["network"]] = doc
    for path in extra_files:
        doc = _strip_comments(orjson.loads(Path(path).read_bytes()))
        docs = doc if isinstance(doc, list) else [doc]
        for d in docs:
            if d.get("network") not in data:
                raise ValueError(f"{path}: 'network' must be one of {sorted(data)}")
            data[d["network"]] = merge(data[d["network"]], d)
    return data


def load_config(extra_files: Iterable[str | Path] = ()) -> NetworkConfig:
    """Build the classifier's configuration from the shipped files plus user extensions."""
    raw = load_raw(extra_files)
    render = _render(raw["render"])
    return NetworkConfig(helium=_helium(raw["helium"]), render=render,
                         token_programs=dict(render.token_programs))


@lru_cache(maxsize=1)
def default_config() -> NetworkConfig:
    """The shipped configuration (cached: it never changes within a process)."""
    return load_config()
