"""Account-layout eras: block-time boundaries mapped to slots.

Instruction account layouts changed over time (reference layout_history.txt), and the
decoder selects a layout by slot. The boundaries are known as dates (program release tags,
HIP activation); they are mapped to slots with ONE linear rule so that the program specs
(schemas/programs/*.json), the chain simulator and tests agree exactly:

    slot(t) = ANCHOR_SLOT + floor((t - ANCHOR_TIME) * 5 / 2)      (integer arithmetic)

anchored at a real mainnet transaction (fixture hsd_claim_rewards: slot 409,977,754 at
2026-03-31T00:15:43Z) with mainnet's nominal 2.5 slots/s. Real mainnet drifted from 2.5
slots/s, so for real data these slots are approximate (hours, not days, around 2025); a
transaction close to a boundary can be decoded with the neighbouring layout. The simulator
generates slots from times with `slot_for_time`, so for simulated data the mapping is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

ANCHOR_SLOT = 409_977_754
ANCHOR_TIME = 1_774_916_143      # 2026-03-31T00:15:43Z
SLOTS_PER_SECOND = 2.5


def slot_for_time(unix_ts: int) -> int:
    """The slot the project assigns to a block time (see module docstring); exact integer math."""
    return ANCHOR_SLOT + ((int(unix_ts) - ANCHOR_TIME) * 5) // 2


def time_for_slot(slot: int) -> int:
    """The earliest block time mapped to `slot` or later: time_for_slot(slot_for_time(t)) == t."""
    return ANCHOR_TIME - ((-(slot - ANCHOR_SLOT) * 2) // 5)


def _ts(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp())


@dataclass(frozen=True, slots=True)
class Boundary:
    name: str
    utc: str          # ISO date-time (UTC) the boundary is placed at
    source: str       # why this date
    unix: int
    slot: int


def _b(name: str, utc: str, source: str) -> Boundary:
    ts = _ts(utc)
    return Boundary(name, utc, source, ts, slot_for_time(ts))


BOUNDARIES: dict[str, Boundary] = {
    b.name: b
    for b in (
        _b("hsd_0_1_0", "2023-09-28T00:00:00",
           "helium-sub-daos 0.1.0 release tag: calculate_utility_score_v0 drops active_device_aggregator/history_buffer"),
        _b("hip96_mobile_onboarding", "2024-01-08T00:00:00",
           "helium-entity-manager 0.2.3 release tag, first after HIP-96 source change 2023-12-19: "
           "onboard_mobile_hotspot_v0 inserts dnt_burner, dnt_mint, dnt_price"),
        _b("hip138", "2025-01-28T00:00:00",
           "helium-sub-daos 0.2.0 release tag (HIP-138 live): issue_rewards_v0 drops dnt_circuit_breaker, "
           "appends prev_sub_dao_epoch_info; rewards_escrow/delegator_pool become the DAO's HNT accounts"),
        _b("hexboost_dc", "2025-03-12T00:00:00",
           "hexboosting 0.2.0 release tag (source change 2025-02-11): boost_v0 pays in DC, "
           "price_oracle/payment_mint become data_credits/dc_mint"),
        _b("hip149", "2026-07-20T00:00:00",
           "helium-sub-daos 0.2.41 release tag (HIP-149): issue_rewards_v0 gains optional supplement_vault, "
           "council_vault; calculate_utility_score_v0 gains optional hnt_price_oracle"),
    )
}


def boundary_slot(name: str) -> int:
    return BOUNDARIES[name].slot
