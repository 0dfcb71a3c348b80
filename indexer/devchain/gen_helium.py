"""Helium activity: each function returns a `Plan` whose instructions carry ground-truth notes.

The notes (`Ix.events`) follow /work/shared flow rules (the contract with the classifier): the
event is keyed on the *flow instruction* (mint_data_credits_v0, burn_without_tracking_v0,
issue_rewards_v0 ...), never on its CPI children, and amounts are what the generator minted,
burned or moved. Event day/epoch conventions: emissions belong to `epoch_day(epoch)`, everything
else to the block's UTC day (filled in by the ledger).
"""

from __future__ import annotations

from datetime import date

from indexer.devchain import accounts as A
from indexer.devchain.context import Plan, SimContext
from indexer.devchain.keys import ata, b58, pda
from indexer.devchain.programs import anchor_ix, spl_burn, spl_mint_to, spl_transfer
from indexer.devchain.txbuild import Ix, compute_unit_limit, compute_unit_price
from indexer.networks.events import epoch_day

H = "helium"

# HIP-20 HNT schedule per epoch day (base units), newest first
_HNT_SCHEDULE = [
    ("2025-08-01", 2_054_794_520_548),
    ("2024-08-01", 4_109_589_041_096),
    ("2023-08-03", 4_098_360_655_738),
    ("0000-00-00", 8_219_178_082_192),
]
NET_EMISSIONS_CAP = 164_383_561_643
IOT_DAILY = 5_479_452_054_794_520        # DNT emissions before HIP-138 (base units, 6 decimals)
MOBILE_DAILY = 164_383_561_643_835_616

HIP138_DAY = "2025-01-28"
TOPUP_FROM = "2024-12-06"
TOPUP_UNTIL = "2025-08-01"               # exclusive
SUPPLEMENT_FROM = "2026-08-06"
HEXBOOST_DC_DAY = "2025-03-12"           # layout era hexboost_dc (indexer.decode.eras)


def _ev(flow_class: str, subtype: str, mint: str, amount: int, **extra) -> dict:
    out = {"network": H, "flow_class": flow_class, "subtype": subtype, "mint": mint, "amount_raw": int(amount)}
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def _budget(ctx: SimContext, units: int = 400_000) -> list[Ix]:
    out = [compute_unit_limit(units)]
    if ctx.rng.random() < 0.8:
        out.append(compute_unit_price(ctx.rng.choice([1, 1000, 5000, 25_000, 100_000])))
    return out


def _era_after(ctx: SimContext, boundary: str) -> bool:
    from indexer.decode import eras

    return ctx.slot >= eras.boundary_slot(boundary)


def _tuktuk(ctx: SimContext, tasks: list[Ix], crank: str) -> Ix:
    """tuktuk run_task_v0 wrapping queued tasks (their accounts follow as remaining accounts)."""
    named = {"crank_turner": crank, "rent_refund": ctx.address("tuktuk/rent_refund"),
             "task_queue": ctx.address("tuktuk/task_queue"),
             "task": ctx.address(f"tuktuk/task/{ctx.rng.randrange(1 << 30)}")}
    fixed = [(named["crank_turner"], True, True), (named["rent_refund"], False, True),
             (named["task_queue"], False, True), (named["task"], False, True),
             (A.SYSTEM_PROGRAM, False, False), (A.SYSVAR_INSTRUCTIONS, False, False)]
    remaining: list[tuple[str, bool, bool]] = []
    seen = {m[0] for m in fixed}
    for t in tasks:
        for addr in [t.program_id] + [m[0] for m in t.metas]:
            if addr not in seen:
                seen.add(addr)
                remaining.append((addr, False, any(m[0] == addr and m[2] for m in t.metas)))
    return anchor_ix(A.TUKTUK, "run_task_v0", named, {"free_task_ids": []}, ctx.slot,
                     default_account=ctx.default_account, fallback_accounts=fixed + remaining,
                     raw_args=b"\0\0\0\0", remaining=remaining, children=tasks, cu=12_000)


def _has_spec(program_id: str, name: str, slot: int) -> bool:
    from indexer.devchain.programs import account_spec

    return account_spec(program_id, name, slot) is not None


def _cb_mint(ctx: SimContext, mint: str, to: str, authority: str, amount: int) -> Ix:
    breaker = A.MINT_BREAKERS[mint]
    child = spl_mint_to(mint, to, breaker, amount)
    return anchor_ix(A.CIRCUIT_BREAKER, "mint_v0",
                     {"mint": mint, "to": to, "mint_authority": authority, "circuit_breaker": breaker},
                     {"args": {"amount": amount}}, ctx.slot, children=[child], cu=9_000)


def _cb_transfer(ctx: SimContext, mint: str, src: str, dst: str, owner: str, breaker: str, amount: int) -> Ix:
    # the breaker PDA holds the token account's authority (fixture: spl authority = breaker)
    child = spl_transfer(src, dst, breaker, amount)
    return anchor_ix(A.CIRCUIT_BREAKER, "transfer_v0",
                     {"from": src, "to": dst, "owner": owner, "circuit_breaker": breaker},
                     {"args": {"amount": amount}}, ctx.slot, children=[child], cu=9_000)


def _cb_burn(ctx: SimContext, mint: str, src: str, owner: str, breaker: str, amount: int) -> Ix:
    child = spl_burn(src, mint, breaker, amount)
    fallback = [(src, False, True), (owner, False, False), (mint, False, True), (breaker, False, True),
                (A.TOKEN_PROGRAM, False, False)]
    return anchor_ix(A.CIRCUIT_BREAKER, "burn_v0",
                     {"from": src, "owner": owner, "mint": mint, "circuit_breaker": breaker},
                     {"args": {"amount": amount}}, ctx.slot, children=[child], fallback_accounts=fallback,
                     raw_args=amount.to_bytes(8, "little"), default_account=ctx.default_account, cu=9_000)


def _sub_dao_epoch_info(sub_dao: str, epoch: int) -> str:
    return pda(A.HELIUM_SUB_DAOS, b"sub_dao_epoch_info", b58(sub_dao), epoch.to_bytes(8, "little"))


def _dao_epoch_info(epoch: int) -> str:
    return pda(A.HELIUM_SUB_DAOS, b"dao_epoch_info", b58(A.DAO), epoch.to_bytes(8, "little"))


# ---------------------------------------------------------------------------------------------
# DC purchase / delegation / burns


def hnt_price(ctx: SimContext) -> int:
    """HNT/USD with expo -8, drifting slowly with the day so logs and amounts vary."""
    return 250_000_000 + (ctx.epoch % 97) * 1_300_000 + ctx.rng.randrange(-2_000_000, 2_000_000)


def mint_dc_ix(ctx: SimContext, owner: str, recipient: str, hnt_amount: int | None = None,
               dc_amount: int | None = None) -> Ix:
    price = hnt_price(ctx)
    # DC = USD * 1e5; USD = bones/1e8 * price/1e8
    if dc_amount is None:
        dc = hnt_amount * price // 10**11
        hnt = hnt_amount
    else:
        dc = dc_amount
        hnt = -(-dc_amount * 10**11 // price)
    burner = ctx.funded(owner, A.HNT, hnt)
    rta = ctx.token_account(recipient, A.DC)
    children = [
        spl_burn(burner, A.HNT, owner, hnt),
        _cb_mint(ctx, A.DC, rta, A.DATA_CREDITS_ACCOUNT, dc),
    ]
    args = {"args": {"hnt_amount": hnt_amount, "dc_amount": dc_amount}}
    events = [_ev("purchase", "hnt_burned", A.HNT, hnt, leg=0), _ev("purchase", "dc_minted", A.DC, dc, leg=1)]
    return anchor_ix(
        A.DATA_CREDITS, "mint_data_credits_v0",
        {"burner": burner, "recipient_token_account": rta, "recipient": recipient, "owner": owner,
         "circuit_breaker": A.DC_MINT_BREAKER},
        args, ctx.slot, children=children, events=events, default_account=ctx.default_account,
        logs=(f"HNT Price is {price} * 10^-8, issuing {dc} data credits",), cu=38_000,
    )


def dc_purchase(ctx: SimContext) -> Plan:
    owner = ctx.actor("dc-buyer", 40)
    if ctx.rng.random() < 0.5:
        ix = mint_dc_ix(ctx, owner, owner, hnt_amount=ctx.rng.randrange(10**8, 500 * 10**8))
    else:
        ix = mint_dc_ix(ctx, owner, owner, dc_amount=ctx.rng.randrange(10**5, 10**9))
    return Plan(owner, _budget(ctx) + [ix], kind="dc_purchase")


def delegate_ix(ctx: SimContext, owner: str, payer: str, sub_dao: str, amount: int, router_key: str) -> Ix:
    delegated = pda(A.DATA_CREDITS, b"delegated_data_credits", b58(sub_dao), router_key.encode()[:32])
    escrow = pda(A.DATA_CREDITS, b"escrow_dc_account", b58(delegated))
    ctx.token_account(delegated, A.DC, address=escrow)
    src = ctx.token_account(owner, A.DC)
    return anchor_ix(
        A.DATA_CREDITS, "delegate_data_credits_v0",
        {"delegated_data_credits": delegated, "sub_dao": sub_dao, "owner": owner, "from_account": src,
         "escrow_account": escrow, "payer": payer},
        {"args": {"amount": amount, "router_key": router_key}}, ctx.slot,
        children=[spl_transfer(src, escrow, owner, amount)],
        events=[_ev("transfer", "dc_delegation", A.DC, amount)], default_account=ctx.default_account, cu=30_000,
    )


def dc_delegation(ctx: SimContext) -> Plan:
    owner = ctx.actor("dc-buyer", 40)
    sub_dao = ctx.rng.choice([A.IOT_SUB_DAO, A.MOBILE_SUB_DAO])
    amount = ctx.rng.randrange(10**4, 10**7)
    src = ctx.token_account(owner, A.DC)
    if ctx.tokens.amount(src) < amount:
        # buy the DC first in the same transaction (a common wallet flow)
        buy = mint_dc_ix(ctx, owner, owner, dc_amount=amount * 20)
        ixs = [buy, delegate_ix(ctx, owner, owner, sub_dao, amount, _router_key(ctx))]
    else:
        ixs = [delegate_ix(ctx, owner, owner, sub_dao, amount, _router_key(ctx))]
    return Plan(owner, _budget(ctx) + ixs, kind="dc_delegation")


def _router_key(ctx: SimContext) -> str:
    return ctx.address(f"router:{ctx.rng.randrange(12)}")[:32]


def dc_auto_top_off(ctx: SimContext) -> Plan:
    """dc_auto_top.top_off_dc_v0 (tuktuk-cranked): CPIs mint_data_credits_v0 + delegate_data_credits_v0.
    The auto-top-off PDA owns the HNT it burns and signs the CPIs (invoke_signed)."""
    auto_top = ctx.address(f"auto_top:{ctx.rng.randrange(6)}")
    sub_dao = ctx.rng.choice([A.IOT_SUB_DAO, A.MOBILE_SUB_DAO])
    dc_amount = ctx.rng.randrange(10**6, 5 * 10**8)
    router_key = _router_key(ctx)
    mint_ix = mint_dc_ix(ctx, auto_top, auto_top, dc_amount=dc_amount)
    deleg = delegate_ix(ctx, auto_top, auto_top, sub_dao, dc_amount, router_key)
    delegated = pda(A.DATA_CREDITS, b"delegated_data_credits", b58(sub_dao), router_key.encode()[:32])
    top = anchor_ix(
        A.DC_AUTO_TOP, "top_off_dc_v0",
        {"auto_top_off": auto_top, "task_queue": ctx.address("tuktuk/task_queue"),
         "delegated_data_credits": delegated, "sub_dao": sub_dao, "from_account": ata(auto_top, A.DC),
         "from_hnt_account": ata(auto_top, A.HNT), "hnt_account": ata(auto_top, A.HNT),
         "escrow_account": pda(A.DATA_CREDITS, b"escrow_dc_account", b58(delegated)),
         "circuit_breaker": A.DC_MINT_BREAKER, "instruction_sysvar": A.SYSVAR_INSTRUCTIONS},
        {}, ctx.slot, default_account=ctx.default_account, children=[mint_ix, deleg], cu=25_000)
    crank = ctx.actor("crank", 4)
    return Plan(crank, _budget(ctx) + [_tuktuk(ctx, [top], crank)], kind="dc_auto_top")


def burn_delegated(ctx: SimContext) -> Plan:
    """Oracle (packet verifier) burn of a payer's delegated DC for data transfer; per sub-DAO."""
    mint_name, sub_dao = ctx.rng.choice([("iot", A.IOT_SUB_DAO), ("mobile", A.MOBILE_SUB_DAO)])
    authority = ctx.signer(f"dc-burn-authority:{mint_name}")
    router_key = _router_key(ctx)
    delegated = pda(A.DATA_CREDITS, b"delegated_data_credits", b58(sub_dao), router_key.encode()[:32])
    escrow = pda(A.DATA_CREDITS, b"escrow_dc_account", b58(delegated))
    amount = ctx.rng.randrange(1, 3_000_000) if ctx.rng.random() < 0.9 else ctx.rng.randrange(10**7, 10**9)
    ctx.token_account(delegated, A.DC, address=escrow)
    ctx.reserve(escrow, amount, amount * 1000)
    epoch_info = _sub_dao_epoch_info(sub_dao, ctx.epoch)
    track = anchor_ix(A.HELIUM_SUB_DAOS, "track_dc_burn_v0",
                      {"sub_dao_epoch_info": epoch_info, "sub_dao": sub_dao, "account_payer": A.DC_ACCOUNT_PAYER,
                       "registrar": ctx.address("vsr/registrar")},
                      {"args": {"dc_burned": amount, "bump": 255}}, ctx.slot,
                      default_account=ctx.default_account, cu=8_000)
    ix = anchor_ix(
        A.DATA_CREDITS, "burn_delegated_data_credits_v0",
        {"sub_dao_epoch_info": epoch_info, "sub_dao": sub_dao, "dc_burn_authority": authority,
         "delegated_data_credits": delegated, "escrow_account": escrow,
         "registrar": ctx.address("vsr/registrar")},
        {"args": {"amount": amount}}, ctx.slot,
        children=[spl_burn(escrow, A.DC, delegated, amount), track],
        events=[_ev("usage_fee", "data_transfer", A.DC, amount, sub_dao=sub_dao)],
        default_account=ctx.default_account, cu=25_000,
    )
    return Plan(authority, _budget(ctx, 200_000) + [ix], kind="burn_delegated")


def _burn_without_tracking(ctx: SimContext, owner: str, burner: str, amount: int, subtype: str) -> Ix:
    return anchor_ix(
        A.DATA_CREDITS, "burn_without_tracking_v0",
        {"burner": burner, "owner": owner, "data_credits": A.DATA_CREDITS_ACCOUNT},
        {"args": {"amount": amount}}, ctx.slot,
        children=[spl_burn(burner, A.DC, owner, amount)],
        events=[_ev("usage_fee", subtype, A.DC, amount)], default_account=ctx.default_account, cu=12_000,
    )


def _hashes(ctx: SimContext) -> dict:
    rb = ctx.rng.randbytes
    return {"data_hash": rb(32), "creator_hash": rb(32), "root": rb(32), "index": ctx.rng.randrange(1 << 20)}


def onboarding(ctx: SimContext) -> Plan:
    """HEM onboarding (IoT full / data-only, or the mobile back-payment) burning DC via CPI."""
    fee_payer = ctx.actor("maker", 12)
    choice = ctx.rng.random()
    if choice < 0.5:
        name = "onboard_iot_hotspot_v0"
        amount = 4_000_000 if ctx.rng.random() < 0.3 else 100_000
        args = {"args": {**_hashes(ctx), "location": ctx.rng.randrange(1 << 60) if amount > 100_000 else None,
                         "elevation": None, "gain": None}}
        sub_dao = A.IOT_SUB_DAO
    elif choice < 0.8:
        name = "onboard_data_only_iot_hotspot_v0"
        amount = 50_000
        args = {"args": {**_hashes(ctx), "location": None, "elevation": None, "gain": None}}
        sub_dao = A.IOT_SUB_DAO
    else:
        name = "temp_pay_mobile_onboarding_fee_v0"
        amount = 4_000_000
        args = {}
        sub_dao = A.MOBILE_SUB_DAO
    burner = ctx.funded(fee_payer, A.DC, amount, headroom=2000)
    cpi = _burn_without_tracking(ctx, fee_payer, burner, amount, "onboarding")
    ix = anchor_ix(A.HELIUM_ENTITY_MANAGER, name,
                   {"dc_fee_payer": fee_payer, "payer": fee_payer, "dc_burner": burner, "sub_dao": sub_dao,
                    "dc": A.DATA_CREDITS_ACCOUNT},
                   args, ctx.slot, children=[cpi], default_account=ctx.default_account, cu=60_000)
    return Plan(fee_payer, _budget(ctx) + [ix], kind="onboarding")


def location_assert(ctx: SimContext) -> Plan:
    owner = ctx.actor("hotspot-owner", 300)
    amount = 1_000_000
    burner = ctx.funded(owner, A.DC, amount, headroom=200)
    cpi = _burn_without_tracking(ctx, owner, burner, amount, "location_assert")
    args = {"args": {"location": ctx.rng.randrange(1 << 60), "elevation": ctx.rng.randrange(0, 30),
                     "gain": 12, **_hashes(ctx)}}
    ix = anchor_ix(A.HELIUM_ENTITY_MANAGER, "update_iot_info_v0",
                   {"dc_fee_payer": owner, "payer": owner, "hotspot_owner": owner, "dc_burner": burner,
                    "sub_dao": A.IOT_SUB_DAO, "dc": A.DATA_CREDITS_ACCOUNT},
                   args, ctx.slot, children=[cpi], default_account=ctx.default_account, cu=70_000)
    return Plan(owner, _budget(ctx) + [ix], kind="location_assert")


def hex_boost(ctx: SimContext) -> Plan:
    payer = ctx.actor("carrier-boost", 4)
    periods = ctx.rng.randrange(1, 7)
    level = ctx.rng.randrange(1, 10)
    args = {"args": {"location": ctx.rng.randrange(1 << 60), "version": 0,
                     "amounts": [{"period": p, "amount": level} for p in range(periods)],
                     "device_type": {ctx.rng.choice(["CbrsIndoor", "WifiIndoor", "WifiOutdoor"]): None}}}
    if _era_after(ctx, "hexboost_dc"):
        amount = periods * level * 500_000
        burner = ctx.funded(payer, A.DC, amount, headroom=300)
        cpi = _burn_without_tracking(ctx, payer, burner, amount, "hex_boost")
        accounts = {"payer": payer, "payment_account": burner, "data_credits": A.DATA_CREDITS_ACCOUNT}
        children = [cpi]
    else:
        # historical era: MOBILE burned directly by boost_v0 (priced via Pyth)
        amount = periods * level * 7_000_000_000
        burner = ctx.funded(payer, A.MOBILE, amount, headroom=300)
        children = [spl_burn(burner, A.MOBILE, payer, amount,
                             events=[_ev("usage_fee", "hex_boost", A.MOBILE, amount)])]
        accounts = {"payer": payer, "payment_account": burner, "payment_mint": A.MOBILE,
                    "price_oracle": ctx.address("pyth/mobile")}
    ix = anchor_ix(A.HEXBOOSTING, "boost_v0", accounts, args, ctx.slot, children=children,
                   default_account=ctx.default_account, cu=50_000)
    return Plan(payer, _budget(ctx) + [ix], kind="hex_boost")


def other_burn(ctx: SimContext) -> Plan:
    owner = ctx.actor("dc-holder", 30)
    amount = ctx.rng.randrange(1, 2_000_000)
    burner = ctx.funded(owner, A.DC, amount, headroom=500)
    ix = _burn_without_tracking(ctx, owner, burner, amount, "other_burn")
    return Plan(owner, _budget(ctx, 100_000) + [ix], kind="other_burn")


# ---------------------------------------------------------------------------------------------
# epoch emissions


def hnt_schedule(epoch: int) -> int:
    day = epoch_day(epoch)
    for start, amount in _HNT_SCHEDULE:
        if day >= start:
            return amount
    return _HNT_SCHEDULE[-1][1]


def _treasury(dnt: str) -> str:
    return ata(A.TREASURY_MANAGEMENT_ACCOUNTS[dnt], A.HNT)


def _treasury_owner(ctx: SimContext, dnt: str) -> str:
    return ctx.address(f"treasury_breaker:{dnt}")


def _iot_share(epoch: int) -> int:
    """IOT's share of HNT emissions in basis points (deterministic per epoch)."""
    return 2000 + (epoch * 7919) % 1500


def utility_score_task(ctx: SimContext, dnt: str, epoch: int) -> Ix:
    sub_dao = A.SUB_DAOS[dnt]
    return anchor_ix(
        A.HELIUM_SUB_DAOS, "calculate_utility_score_v0",
        {"payer": A.TUKTUK_CRANK_SIGNER, "sub_dao": sub_dao, "dao_epoch_info": _dao_epoch_info(epoch),
         "prev_dao_epoch_info": _dao_epoch_info(epoch - 1), "sub_dao_epoch_info": _sub_dao_epoch_info(sub_dao, epoch),
         "prev_sub_dao_epoch_info": _sub_dao_epoch_info(sub_dao, epoch - 1),
         "not_emitted_counter": A.NOT_EMITTED_COUNTERS[A.HNT], "registrar": ctx.address("vsr/registrar")},
        {"args": {"epoch": epoch}}, ctx.slot, default_account=ctx.default_account, cu=60_000,
    )


def issue_rewards_task(ctx: SimContext, dnt: str, epoch: int) -> Ix:
    """issue_rewards_v0(epoch) for one sub-DAO pass, with the era's mints as CPIs."""
    sub_dao = A.SUB_DAOS[dnt]
    day = epoch_day(epoch)
    total = hnt_schedule(epoch) + NET_EMISSIONS_CAP * (90 + epoch % 11) // 100
    share = _iot_share(epoch) if dnt == A.IOT else 10_000 - _iot_share(epoch)
    post138 = _era_after(ctx, "hip138")
    mints: list[tuple[str, str, str, int, str, str]] = []  # (mint, to, authority, amount, subtype, log)
    if post138:
        pass_hnt = total * share // 10_000
        delegators = pass_hnt * A.DELEGATOR_PERCENT // 100
        escrow_amt = pass_hnt - delegators
        ctx.token_account(A.DAO_REWARDS_ESCROW_BREAKER, A.HNT, address=A.DAO_REWARDS_ESCROW)
        ctx.token_account(A.DAO_DELEGATOR_POOL_BREAKER, A.HNT, address=A.DAO_DELEGATOR_POOL)
        mints.append((A.HNT, A.DAO_REWARDS_ESCROW, A.DAO, escrow_amt, "rewards_escrow",
                      f"Minting {escrow_amt} to rewards escrow"))
        mints.append((A.HNT, A.DAO_DELEGATOR_POOL, A.DAO, delegators, "delegator_pool",
                      f"Minting {delegators} delegation rewards"))
        rewards_escrow, delegator_pool = A.DAO_REWARDS_ESCROW, A.DAO_DELEGATOR_POOL
    else:
        hst_bps = 3000
        pass_hnt = total * (10_000 - hst_bps) // 10_000 * share // 10_000
        dnt_total = IOT_DAILY if dnt == A.IOT else MOBILE_DAILY
        dnt_delegators = dnt_total * A.DELEGATOR_PERCENT // 100
        escrow_amt = dnt_total - dnt_delegators
        rewards_escrow = A.IOT_REWARDS_ESCROW if dnt == A.IOT else A.MOBILE_REWARDS_ESCROW
        ctx.token_account(ctx.address(f"escrow_breaker:{dnt}"), dnt, address=rewards_escrow)
        delegator_pool = ctx.token_account(ctx.address(f"delegator_pool_owner:{dnt}"), dnt,
                                           address=ctx.address(f"delegator_pool:{dnt}"))
        mints.append((dnt, rewards_escrow, sub_dao, escrow_amt, "rewards_escrow",
                      f"Minting {escrow_amt} DNT eissions to treasury"))
        mints.append((dnt, delegator_pool, sub_dao, dnt_delegators, "delegator_pool",
                      f"Minting {dnt_delegators} delegation rewards"))
        treasury = ctx.token_account(_treasury_owner(ctx, dnt), A.HNT, address=_treasury(dnt))
        mints.append((A.HNT, treasury, A.DAO, pass_hnt, "treasury", f"Minting {pass_hnt} to treasury"))
    treasury = ctx.token_account(_treasury_owner(ctx, dnt), A.HNT, address=_treasury(dnt))
    if dnt == A.MOBILE and TOPUP_FROM <= day < TOPUP_UNTIL:
        mints.append((A.HNT, treasury, A.DAO, A.HIP138_MOBILE_TOPUP, "mobile_treasury_topup",
                      "Minting HIP-138 HNT to MOBILE treasury"))
    accounts = {"sub_dao": sub_dao, "dao_epoch_info": _dao_epoch_info(epoch),
                "sub_dao_epoch_info": _sub_dao_epoch_info(sub_dao, epoch),
                "prev_sub_dao_epoch_info": _sub_dao_epoch_info(sub_dao, epoch - 1),
                "hnt_circuit_breaker": A.HNT_MINT_BREAKER, "dnt_circuit_breaker": A.MINT_BREAKERS[dnt],
                "dnt_mint": dnt, "treasury": treasury, "rewards_escrow": rewards_escrow,
                "delegator_pool": delegator_pool}
    if post138 and day >= SUPPLEMENT_FROM:
        supplement = A.SUPPLEMENT_PER_PASS
        council = supplement * A.COUNCIL_SHARE_BPS // 10_000
        vault_amt = supplement - council
        vault = ctx.token_account(ctx.address("supplement_vault_owner"), A.HNT, address=A.SUPPLEMENT_VAULT)
        council_acct = ctx.token_account(A.COUNCIL_MINI_FANOUT, A.HNT)
        accounts["supplement_vault"] = vault
        accounts["council_vault"] = council_acct
        mints.append((A.HNT, vault, A.DAO, vault_amt, "supplement",
                      f"Minting {vault_amt} supplement, {council} Council compensation"))
        mints.append((A.HNT, council_acct, A.DAO, council, "council", ""))
    children = []
    events = []
    logs = []
    for leg, (mint, to, authority, amount, subtype, log) in enumerate(mints):
        children.append(_cb_mint(ctx, mint, to, authority, amount))
        events.append(_ev("emission", subtype, mint, amount, leg=leg, epoch=epoch, day=day))
        if log:
            logs.append(log)
    return anchor_ix(A.HELIUM_SUB_DAOS, "issue_rewards_v0", accounts, {"args": {"epoch": epoch}}, ctx.slot,
                     children=children, events=events, logs=tuple(logs),
                     default_account=ctx.default_account, cu=90_000)


def issue_hst_pool_task(ctx: SimContext, epoch: int) -> Ix:
    total = hnt_schedule(epoch) + NET_EMISSIONS_CAP * (90 + epoch % 11) // 100
    amount = total * 3000 // 10_000
    hst_pool = ctx.token_account(ctx.address("hst_fanout"), A.HNT, address=ctx.address("hst_pool"))
    return anchor_ix(
        A.HELIUM_SUB_DAOS, "issue_hst_pool_v0",
        {"dao_epoch_info": _dao_epoch_info(epoch), "hnt_circuit_breaker": A.HNT_MINT_BREAKER,
         "hst_pool": hst_pool},
        {"args": {"epoch": epoch}}, ctx.slot, children=[_cb_mint(ctx, A.HNT, hst_pool, A.DAO, amount)],
        events=[_ev("emission", "hst_pool", A.HNT, amount, leg=0, epoch=epoch, day=epoch_day(epoch))],
        default_account=ctx.default_account, cu=40_000,
    )


def epoch_crank(ctx: SimContext, dnt: str, epoch: int) -> Plan:
    crank = ctx.signer("crank:epoch")
    tasks = [issue_rewards_task(ctx, dnt, epoch)]
    return Plan(crank, _budget(ctx, 600_000) + [_tuktuk(ctx, tasks, crank)], kind="issue_rewards", can_fail=False)


def utility_crank(ctx: SimContext, dnt: str, epoch: int) -> Plan:
    crank = ctx.signer("crank:epoch")
    return Plan(crank, _budget(ctx) + [_tuktuk(ctx, [utility_score_task(ctx, dnt, epoch)], crank)],
                kind="utility_score", can_fail=False)


def hst_crank(ctx: SimContext, epoch: int) -> Plan:
    crank = ctx.signer("crank:epoch")
    return Plan(crank, _budget(ctx) + [_tuktuk(ctx, [issue_hst_pool_task(ctx, epoch)], crank)],
                kind="issue_hst_pool", can_fail=False)


# ---------------------------------------------------------------------------------------------
# distributions, claims, reversals, redeems


def lazy_distributor_payout(ctx: SimContext) -> Plan:
    """Oracle-signed set_current_rewards + distribute_* from the rewards escrow (tuktuk-wrapped)."""
    post138 = _era_after(ctx, "hip138")
    if post138:
        mint, ld, escrow, breaker = A.HNT, A.HNT_LAZY_DISTRIBUTOR, A.DAO_REWARDS_ESCROW, A.DAO_REWARDS_ESCROW_BREAKER
    else:
        dnt = ctx.rng.choice([A.IOT, A.MOBILE])
        mint = dnt
        ld = A.IOT_LAZY_DISTRIBUTOR if dnt == A.IOT else A.MOBILE_LAZY_DISTRIBUTOR
        escrow = A.IOT_REWARDS_ESCROW if dnt == A.IOT else A.MOBILE_REWARDS_ESCROW
        breaker = ctx.address(f"escrow_breaker:{dnt}")
    ctx.token_account(breaker, mint, address=escrow)
    owner = ctx.actor("hotspot-owner", 300)
    dest = ctx.token_account(owner, mint)
    recipient = pda(A.LAZY_DISTRIBUTOR, b"recipient", b58(ld), b58(ctx.address(f"asset:{owner}")))
    amount = 0 if ctx.rng.random() < 0.05 else ctx.rng.randrange(10**4, 10**9 if mint == A.HNT else 10**10)
    ctx.reserve(escrow, amount, amount * 1000)      # the escrow held earlier epochs' rewards
    oracle_payer = ctx.signer("oracle:rewards")
    set_rewards = anchor_ix(
        A.LAZY_DISTRIBUTOR, "set_current_rewards_v1",
        {"payer": oracle_payer, "lazy_distributor": ld, "recipient": recipient},
        {"args": {"oracle_index": 0, "current_rewards": amount + ctx.rng.randrange(10**9)}}, ctx.slot,
        default_account=ctx.default_account, cu=9_000)
    wrapper = anchor_ix(
        A.REWARDS_ORACLE, "set_current_rewards_wrapper_v2",
        {"payer": oracle_payer, "lazy_distributor": ld, "recipient": recipient},
        {"args": {"oracle_index": 0, "current_rewards": amount + ctx.rng.randrange(10**9)}}, ctx.slot,
        children=[set_rewards], default_account=ctx.default_account, cu=15_000)
    name = ctx.rng.choice(["distribute_rewards_v0", "distribute_compression_rewards_v0",
                           "distribute_custom_destination_v0"])
    args = {"args": _hashes(ctx)} if name == "distribute_compression_rewards_v0" else {}
    dist = anchor_ix(
        A.LAZY_DISTRIBUTOR, name,
        {"payer": oracle_payer, "lazy_distributor": ld, "recipient": recipient, "rewards_mint": mint,
         "rewards_escrow": escrow, "circuit_breaker": breaker, "owner": owner, "destination_account": dest},
        args, ctx.slot, children=[_cb_transfer(ctx, mint, escrow, dest, ld, breaker, amount)],
        events=[_ev("distribution", "lazy_distributor", mint, amount)],
        default_account=ctx.default_account, cu=40_000)
    crank = ctx.actor("crank", 4)
    return Plan(crank, _budget(ctx) + [_tuktuk(ctx, [wrapper, dist], crank)], kind="ld_payout")


def delegation_claims(ctx: SimContext) -> Plan:
    """claim_rewards_v1 (HNT, post-HIP-138) or _v0 (DNT); non-voters' share is burned (v1)."""
    post138 = _era_after(ctx, "hip138")
    epoch = ctx.epoch - (1 if ctx.day_fraction > 0.02 else 2)
    tasks = []
    for _ in range(ctx.rng.choice([1, 1, 2])):
        position_owner = ctx.actor("ve-holder", 200)
        sub_dao = ctx.rng.choice([A.IOT_SUB_DAO, A.MOBILE_SUB_DAO])
        amount = ctx.rng.randrange(1, 10**8)
        position = ctx.address(f"position:{position_owner}")
        if post138:
            mint, pool, breaker, name = A.HNT, A.DAO_DELEGATOR_POOL, A.DAO_DELEGATOR_POOL_BREAKER, "claim_rewards_v1"
            ctx.token_account(A.DAO_DELEGATOR_POOL_BREAKER, A.HNT, address=pool)
        else:
            dnt = A.IOT if sub_dao == A.IOT_SUB_DAO else A.MOBILE
            mint, name = dnt, "claim_rewards_v0"
            pool = ctx.token_account(ctx.address(f"delegator_pool_owner:{dnt}"), dnt,
                                     address=ctx.address(f"delegator_pool:{dnt}"))
            breaker = ctx.address(f"delegator_pool_breaker:{dnt}")
        ctx.reserve(pool, amount, amount * 10_000)    # both claims of one transaction may share the pool
        delegator_ata = ctx.token_account(position_owner, mint)
        burn = post138 and ctx.rng.random() < 0.3
        if burn:
            child = _cb_burn(ctx, mint, pool, A.DAO, breaker, amount)
            events = [_ev("reversal", "non_voter_burn", mint, amount, epoch=epoch)]
        else:
            child = _cb_transfer(ctx, mint, pool, delegator_ata, A.DAO if post138 else sub_dao, breaker, amount)
            events = [_ev("distribution", "delegation_claim", mint, amount, epoch=epoch)]
        tasks.append(anchor_ix(
            A.HELIUM_SUB_DAOS, name,
            {"position": position, "position_authority": position_owner, "sub_dao": sub_dao,
             "dao_epoch_info": _dao_epoch_info(epoch), "sub_dao_epoch_info": _sub_dao_epoch_info(sub_dao, epoch),
             "delegator_pool": pool, "delegator_ata": delegator_ata, "delegator_pool_circuit_breaker": breaker,
             "dnt_mint": mint, "payer": A.TUKTUK_CRANK_SIGNER, "registrar": ctx.address("vsr/registrar"),
             "mint": ctx.address(f"position_mint:{position_owner}")},
            {"args": {"epoch": epoch}}, ctx.slot, children=[child], events=events,
            logs=(f"Staked {ctx.rng.randrange(10**9)} veHNT at start of epoch with "
                  f"{ctx.rng.randrange(10**17)} total veHNT delegated to dao and "
                  f"{ctx.rng.randrange(10**11)} total rewards to dao",),
            default_account=ctx.default_account, cu=70_000))
    crank = ctx.signer("crank:claims")
    ixs = _budget(ctx) + [_tuktuk(ctx, [t], crank) for t in tasks]
    return Plan(crank, ixs, kind="delegation_claim")


def no_emit(ctx: SimContext, mint: str) -> Plan | None:
    acct = ctx.token_account(A.NO_EMIT_WALLET, mint)
    if ctx.tokens.amount(acct) == 0:
        # the not-emitted entity's rewards arrived through the lazy distributor earlier
        ctx.tokens.accounts[acct][2] = ctx.rng.randrange(10**8, 10**11)
    amount = ctx.tokens.amount(acct)
    payer = ctx.signer("crank:no_emit")
    ix = anchor_ix(A.NO_EMIT, "no_emit_v0",
                   {"payer": payer, "no_emit_wallet": A.NO_EMIT_WALLET,
                    "not_emitted_counter": A.NOT_EMITTED_COUNTERS[mint], "token_account": acct, "mint": mint},
                   {}, ctx.slot, children=[spl_burn(acct, mint, A.NO_EMIT_WALLET, amount)],
                   events=[_ev("reversal", "no_emit", mint, amount)], default_account=ctx.default_account,
                   cu=20_000)
    return Plan(payer, _budget(ctx) + [ix], kind="no_emit")


def treasury_redeem(ctx: SimContext) -> Plan:
    owner = ctx.actor("dnt-holder", 50)
    dnt = ctx.rng.choice([A.IOT, A.MOBILE])
    amount = ctx.rng.randrange(10**6, 10**12)
    out = amount // (1000 if dnt == A.IOT else 3000)
    src = ctx.funded(owner, dnt, amount, headroom=100)
    dst = ctx.token_account(owner, A.HNT)
    treasury = ctx.token_account(_treasury_owner(ctx, dnt), A.HNT, address=_treasury(dnt))
    ctx.reserve(treasury, out, out * 10_000)
    breaker = ctx.address(f"treasury_breaker:{dnt}")
    tm = A.TREASURY_MANAGEMENT_ACCOUNTS[dnt]
    ix = anchor_ix(
        A.TREASURY_MANAGEMENT, "redeem_v0",
        {"treasury_management": tm, "treasury_mint": A.HNT, "supply_mint": dnt, "treasury": treasury,
         "circuit_breaker": breaker, "from": src, "to": dst, "owner": owner},
        {"args": {"amount": amount, "expected_output_amount": out}}, ctx.slot,
        children=[spl_burn(src, dnt, owner, amount), _cb_transfer(ctx, A.HNT, treasury, dst, tm, breaker, out)],
        events=[_ev("transfer", "treasury_redeem", dnt, amount, leg=0),
                _ev("transfer", "treasury_redeem", A.HNT, out, leg=1)],
        default_account=ctx.default_account, cu=35_000)
    return Plan(owner, _budget(ctx) + [ix], kind="treasury_redeem")


def fanout_distribute(ctx: SimContext) -> Plan:
    """HST fanout distribute_v0: pays an HST holder from the fanout's HNT account."""
    payer = ctx.actor("hst-holder", 20)
    fanout = ctx.address("hst_fanout")
    token_account = ctx.token_account(fanout, A.HNT, address=ctx.address("hst_pool"))
    amount = ctx.rng.randrange(10**6, 10**10)
    ctx.reserve(token_account, amount, amount * 1000)
    to = ctx.token_account(payer, A.HNT)
    ix = anchor_ix(
        A.FANOUT, "distribute_v0",
        {"payer": payer, "fanout": fanout, "token_account": token_account, "owner": payer, "to_account": to,
         "mint": A.HNT},
        {}, ctx.slot, children=[spl_transfer(token_account, to, fanout, amount)],
        events=[_ev("distribution", "fanout", A.HNT, amount)], default_account=ctx.default_account, cu=30_000)
    return Plan(payer, _budget(ctx) + [ix], kind="fanout")


def epoch_of_day(day: str) -> int:
    d = date.fromisoformat(day)
    return (d - date(1970, 1, 1)).days


MOBILE_DNT_FEE_UNTIL = "2025-09-02"      # HIP-96 MOBILE onboarding burn ended (flows.md)


def mobile_onboarding(ctx: SimContext) -> Plan:
    """HEM onboard_mobile_hotspot_v0: DC fee through burn_without_tracking_v0, plus (HIP-96 era,
    Dec-2023 -> 2025-09-02) a MOBILE burn made directly by the instruction (its own event)."""
    fee_payer = ctx.actor("maker", 12)
    owner = ctx.actor("hotspot-owner", 300)
    dc_amount = ctx.rng.choice([2_000_000, 3_000_000, 4_000_000])
    dc_burner = ctx.funded(fee_payer, A.DC, dc_amount, headroom=2000)
    dnt_burner = ctx.token_account(fee_payer, A.MOBILE)
    children = [_burn_without_tracking(ctx, fee_payer, dc_burner, dc_amount, "onboarding")]
    if _era_after(ctx, "hip96_mobile_onboarding") and ctx.day < MOBILE_DNT_FEE_UNTIL:
        dnt_amount = ctx.rng.randrange(10**8, 10**10)
        dnt_burner = ctx.funded(fee_payer, A.MOBILE, dnt_amount, headroom=500)
        children.append(spl_burn(dnt_burner, A.MOBILE, fee_payer, dnt_amount,
                                 events=[_ev("usage_fee", "onboarding", A.MOBILE, dnt_amount)]))
    args = {"args": {**_hashes(ctx), "location": ctx.rng.randrange(1 << 60),
                     "device_type": {ctx.rng.choice(["Cbrs", "WifiIndoor", "WifiOutdoor"]): None},
                     "deployment_info": {"WifiInfoV0": {"antenna": 12, "elevation": 5, "azimuth": 90,
                                                        "mechanical_down_tilt": 0, "electrical_down_tilt": 0}}}}
    ix = anchor_ix(A.HELIUM_ENTITY_MANAGER, "onboard_mobile_hotspot_v0",
                   {"dc_fee_payer": fee_payer, "payer": fee_payer, "hotspot_owner": owner, "dc_burner": dc_burner,
                    "dnt_burner": dnt_burner, "sub_dao": A.MOBILE_SUB_DAO, "dnt_mint": A.MOBILE,
                    "dc": A.DATA_CREDITS_ACCOUNT, "dnt_price": ctx.address("pyth/mobile")},
                   args, ctx.slot, children=children, default_account=ctx.default_account, cu=80_000)
    return Plan(fee_payer, _budget(ctx) + [ix], kind="mobile_onboarding")


def mini_fanout_distribute(ctx: SimContext) -> Plan:
    """mini_fanout.distribute_v0 (tuktuk-cranked): splits a token account among shareholders; one
    event per mint with the transfers summed (flow rules)."""
    mini = A.COUNCIL_MINI_FANOUT if ctx.rng.random() < 0.5 else ctx.address(f"mini_fanout:{ctx.rng.randrange(8)}")
    src = ctx.token_account(mini, A.HNT)
    shares = [ctx.rng.randrange(10**5, 10**9) for _ in range(ctx.rng.randrange(2, 5))]
    ctx.reserve(src, sum(shares), sum(shares) * 100)
    transfers = []
    for k, amount in enumerate(shares):
        dst = ctx.token_account(ctx.keys.signer(f"shareholder:{mini}:{k}"), A.HNT)
        transfers.append(spl_transfer(src, dst, mini, amount))
    ix = anchor_ix(A.MINI_FANOUT, "distribute_v0",
                   {"mini_fanout": mini, "task_queue": ctx.address("tuktuk/task_queue"), "token_account": src},
                   {}, ctx.slot, children=transfers, default_account=ctx.default_account,
                   remaining=[(t.metas[1][0], False, True) for t in transfers],
                   events=[_ev("distribution", "fanout", A.HNT, sum(shares))], cu=30_000)
    crank = ctx.actor("crank", 4)
    return Plan(crank, _budget(ctx) + [_tuktuk(ctx, [ix], crank)], kind="mini_fanout")
