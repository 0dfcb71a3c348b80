"""Helium flow rules: which instruction is which economic flow, and how much moved.

The contract with the chain simulator is /work/briefs/flow_rules.md; the reasons are in
schemas/README.md. Principles:
- A rule keys on one "flow instruction" (program id + Anchor discriminator), never on a
  wrapper (tuktuk run_task_v0, dc_auto_top.top_off_dc_v0) and never on its CPI children:
  children (circuit_breaker mint/transfer/burn, SPL Token) are only read for amounts.
- Instructions are recognised by (program id, discriminator) and read by account position,
  not by decoded names: the decoder may pick a different IDL era or fail on a layout the
  rules still understand (programs.md: "resolve by role").
- Token movements under a Helium instruction that no rule claims become `other/unmatched`
  events with a reason, so nothing that moves value is dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from indexer.decode.model import Instruction
from indexer.networks.config import anchor_discriminator
from indexer.networks.context import TxContext
from indexer.networks.events import FlowClass, FlowEvent, Network, Subtype, epoch_day
from indexer.networks.prices import decimal_str, parse_hnt_price_log
from indexer.networks.tokens import BURN, MINT, TRANSFER, TokenOp, breaker_op, spl_token_op

HELIUM = Network.HELIUM.value
Rule = Callable[[TxContext, Instruction, tuple[Instruction, ...]], list[FlowEvent]]


class MissingAmount(Exception):
    """A flow instruction lacks the CPI its amount is read from (truncated or odd input)."""

    reason = "missing_amount"


class BadEpoch(MissingAmount):
    """An epoch argument no real epoch can have: its day would not fit the ClickHouse Date column."""

    reason = "bad_epoch"


MAX_EPOCH = 65535   # epoch = unix day number; ClickHouse Date (the `day` column) ends at day 65535


def _epoch_arg(ix: Instruction) -> int:
    epoch = _u64_arg(ix)
    if epoch > MAX_EPOCH:
        raise BadEpoch(f"epoch argument {epoch} is beyond 2149-06-06")
    return epoch


# --- reading helpers ------------------------------------------------------------------------
def _acc(ix: Instruction, idx: int) -> str:
    accounts = ix.accounts  # a property (lazy account list): read once
    return accounts[idx] if idx < len(accounts) else ""


def _u64_arg(ix: Instruction) -> int:
    """The first argument after the discriminator: every rule's `amount` or `epoch` is a u64 there."""
    data = ix.data or b""
    if len(data) < 16:
        raise MissingAmount(f"instruction data too short for a u64 argument ({len(data)} bytes)")
    return int.from_bytes(data[8:16], "little")


def value_ops(ctx: TxContext, ix: Instruction) -> list[TokenOp]:
    """Token movements under `ix` in execution order, counted once.

    A circuit_breaker mint_v0/transfer_v0/burn_v0 is the movement (its args.amount); the
    SPL Token instruction it CPIs is then skipped, so nothing is read twice. SPL Token
    instructions not under a breaker count themselves.
    """
    cb = ctx.config.helium.program_id("circuit_breaker")
    tokens = ctx.config.token_programs
    out: list[TokenOp] = []
    stack = list(reversed(ix.children))
    while stack:
        node = stack.pop()
        if node.program_id == cb:
            op = breaker_op(node, ctx.balances)
            if op is not None:
                out.append(op)
                continue
        elif node.program_id in tokens:
            op = spl_token_op(node, ctx.balances)
            if op is not None:
                out.append(op)
            continue
        stack.extend(reversed(node.children))
    return out


def _sub_dao(ctx: TxContext, address: str) -> str:
    return ctx.config.helium.sub_daos.get(address, address)


def _with_legs(events: list[FlowEvent]) -> list[FlowEvent]:
    """leg = None for a single event, else 0,1,2... in execution order (event ids change too)."""
    if len(events) > 1:
        for i, ev in enumerate(events):
            ev.leg = i
            ev.event_id = f"{ev.signature}:{ev.ix_path}:{i}"
    return events


def _unmatched(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...], op: TokenOp,
               reason: str, **kw) -> FlowEvent:
    return ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.OTHER, subtype=Subtype.UNMATCHED,
                     mint=op.mint, amount=op.amount, payer_account=op.source,
                     recipient_account=op.destination, reason=reason, **kw)


# --- data_credits ---------------------------------------------------------------------------
def mint_data_credits(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """Purchase: leg 0 = HNT burned (inner SPL burn), leg 1 = DC minted (inner breaker mint_v0).

    The HNT leg is valued at the price the program logged for this very purchase
    (Pyth EMA - 2*conf); the DC leg at the $0.00001 peg.
    """
    h = ctx.config.helium
    hnt, dc = h.mint_of("HNT"), h.mint_of("DC")
    ops = value_ops(ctx, ix)
    burned = [op for op in ops if op.kind == BURN and op.mint == hnt]
    minted = [op for op in ops if op.kind == MINT and op.mint == dc]
    if not burned or not minted:
        raise MissingAmount("mint_data_credits_v0 without its inner HNT burn and DC mint")
    owner, burner = _acc(ix, 5), _acc(ix, 2)
    recipient, recipient_ata = _acc(ix, 4), _acc(ix, 3)
    price = None
    for line in ctx.logs(ix.path):
        found = parse_hnt_price_log(line)
        if found is not None:
            price = decimal_str(found)
            break
    common = dict(network=HELIUM, flow_class=FlowClass.PURCHASE, payer_account=burner, payer_owner=owner,
                  recipient_account=recipient_ata or minted[0].destination, recipient_owner=recipient)
    return [
        ctx.event(ix, anc, subtype=Subtype.HNT_BURNED, mint=hnt, amount=sum(o.amount for o in burned),
                  leg=0, usd_price=price, **common),
        ctx.event(ix, anc, subtype=Subtype.DC_MINTED, mint=dc, amount=sum(o.amount for o in minted),
                  leg=1, **common),
    ]


def burn_delegated(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """Data-transfer usage: the oracle burns a payer's delegated DC, network = sub_dao [1]."""
    escrow = _acc(ix, 9)
    return [ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.USAGE_FEE, subtype=Subtype.DATA_TRANSFER,
                      mint=ctx.config.helium.mint_of("DC"), amount=_u64_arg(ix),
                      payer_account=escrow, payer_owner=ctx.balances.owner(escrow) or _acc(ix, 8),
                      sub_dao=_sub_dao(ctx, _acc(ix, 1)))]


# parents of burn_without_tracking_v0 that set the fee subtype: (program, instruction) -> subtype
FEE_PARENTS: dict[tuple[str, str], str] = {
    **{("helium_entity_manager", n): Subtype.ONBOARDING for n in (
        "onboard_iot_hotspot_v0", "onboard_mobile_hotspot_v0", "onboard_data_only_iot_hotspot_v0",
        "onboard_data_only_mobile_hotspot_v0", "temp_pay_mobile_onboarding_fee_v0")},
    ("helium_entity_manager", "update_iot_info_v0"): Subtype.LOCATION_ASSERT,
    ("helium_entity_manager", "update_mobile_info_v0"): Subtype.LOCATION_ASSERT,
    ("hexboosting", "boost_v0"): Subtype.HEX_BOOST,
    ("iot_routing_manager", "initialize_organization_v0"): Subtype.OUI_FEE,
    ("iot_routing_manager", "initialize_devaddr_constraint_v0"): Subtype.OUI_FEE,
}
# historical MOBILE fees: an SPL burn of MOBILE directly under these instructions
MOBILE_FEE_PARENTS: dict[tuple[str, str], str] = {
    ("helium_entity_manager", "onboard_mobile_hotspot_v0"): Subtype.ONBOARDING,
    ("helium_entity_manager", "onboard_data_only_mobile_hotspot_v0"): Subtype.ONBOARDING,
    ("hexboosting", "boost_v0"): Subtype.HEX_BOOST,
}


def burn_without_tracking(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """Direct DC burn: subtype by the nearest ancestor with a fee rule (wrappers looked through)."""
    subtype, reason, sub_dao = Subtype.OTHER_BURN, "", ""
    helium_ids = ctx.config.helium.program_ids
    helium_parents = [a for a in anc if a.program_id in helium_ids]
    for parent in reversed(helium_parents):
        key = ctx.name_of(parent)
        if key in FEE_PARENTS:
            subtype = FEE_PARENTS[key]
            sub_dao = _parent_sub_dao(ctx, parent)
            break
    else:
        if helium_parents:
            reason = f"parent {ctx.qualified(helium_parents[-1])} has no fee rule"
    burner = _acc(ix, 1)
    return [ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.USAGE_FEE, subtype=subtype,
                      mint=ctx.config.helium.mint_of("DC"), amount=_u64_arg(ix),
                      payer_account=burner, payer_owner=_acc(ix, 2), sub_dao=sub_dao, reason=reason)]


def _parent_sub_dao(ctx: TxContext, parent: Instruction) -> str:
    """The sub-DAO a fee-paying parent names (onboarding/assert accounts include it), else ""."""
    sub_daos = ctx.config.helium.sub_daos
    for key in parent.accounts:
        if key in sub_daos:
            return sub_daos[key]
    return ""


def delegate_dc(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """DC moved into a router/carrier escrow: prepaid, not yet consumed."""
    return [ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.TRANSFER, subtype=Subtype.DC_DELEGATION,
                      mint=ctx.config.helium.mint_of("DC"), amount=_u64_arg(ix),
                      payer_account=_acc(ix, 6), payer_owner=_acc(ix, 5), recipient_account=_acc(ix, 7),
                      sub_dao=_sub_dao(ctx, _acc(ix, 4)))]


def change_delegated_sub_dao(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """Delegated DC re-pointed between IOT and MOBILE escrows."""
    return [ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.TRANSFER, subtype=Subtype.DC_DELEGATION,
                      mint=ctx.config.helium.mint_of("DC"), amount=_u64_arg(ix),
                      payer_account=_acc(ix, 9), recipient_account=_acc(ix, 10))]


# --- helium_sub_daos: emissions ---------------------------------------------------------------
def _issue_roles(ctx: TxContext, ix: Instruction) -> tuple[dict[str, str], bool, bool]:
    """Destination roles of issue_rewards_v0 by account position, era told apart by where HNT sits.

    <= HSD 0.1.12: hnt_mint[6], dnt_mint[7], treasury[8], rewards_escrow[9], delegator_pool[10].
    >= HSD 0.2.0 (HIP-138): hnt_mint[5], dnt_mint[6], treasury[7], rewards_escrow[8],
    delegator_pool[9]; HIP-149 adds supplement_vault[14], council_vault[15] (absent = program id).
    Returns (account -> role, post_hip138, is_mobile_pass).
    """
    h = ctx.config.helium
    hnt, mobile = h.mint_of("HNT"), h.mint_of("MOBILE")
    post = _acc(ix, 5) == hnt and _acc(ix, 6) != hnt
    if post:
        roles = {_acc(ix, 7): Subtype.TREASURY, _acc(ix, 8): Subtype.REWARDS_ESCROW,
                 _acc(ix, 9): Subtype.DELEGATOR_POOL}
        for idx, role in ((14, Subtype.SUPPLEMENT), (15, Subtype.COUNCIL)):
            key = _acc(ix, idx)
            if key and key != ix.program_id:
                roles[key] = role
        dnt = _acc(ix, 6)
    else:
        roles = {_acc(ix, 8): Subtype.TREASURY, _acc(ix, 9): Subtype.REWARDS_ESCROW,
                 _acc(ix, 10): Subtype.DELEGATOR_POOL}
        dnt = _acc(ix, 7)
    roles.pop("", None)
    is_mobile = dnt == mobile or h.sub_daos.get(_acc(ix, 1)) == "mobile"
    return roles, post, is_mobile


def _label_destination(ctx: TxContext, account: str, roles: dict[str, str]) -> str:
    h = ctx.config.helium
    return (roles.get(account) or h.emission_destinations.get(account)
            or h.emission_owner_destinations.get(ctx.balances.owner(account), ""))


def issue_rewards(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """Epoch emission: one event per inner mint, labelled by destination, dated to the epoch day."""
    epoch = _epoch_arg(ix)
    roles, post, is_mobile = _issue_roles(ctx, ix)
    h = ctx.config.helium
    hnt = h.mint_of("HNT")
    sub_dao = _sub_dao(ctx, _acc(ix, 1))
    events = []
    for op in value_ops(ctx, ix):
        if op.kind != MINT:
            events.append(_unmatched(ctx, ix, anc, op, f"issue_rewards_v0 {op.kind} is not a mint",
                                     epoch=epoch, day=epoch_day(epoch), sub_dao=sub_dao))
            continue
        role = _label_destination(ctx, op.destination, roles)
        if role == Subtype.TREASURY and op.mint == hnt and is_mobile and (
                post or op.amount == h.mobile_topup_raw):
            role = Subtype.MOBILE_TREASURY_TOPUP
        events.append(_emission(ctx, ix, anc, op, role, epoch, sub_dao))
    return _with_legs(events)


def _emission(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...], op: TokenOp, role: str,
              epoch: int | None, sub_dao: str) -> FlowEvent:
    day = epoch_day(epoch) if epoch is not None else None
    if not role:
        return _unmatched(ctx, ix, anc, op, f"{ctx.name_of(ix)[1]} minted to an unlabelled account",
                          epoch=epoch, day=day, sub_dao=sub_dao)
    return ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.EMISSION, subtype=role, mint=op.mint,
                     amount=op.amount, epoch=epoch, day=day, recipient_account=op.destination,
                     sub_dao=sub_dao)


def issue_hst_pool(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """Pre-HIP-138 HST share of the epoch's HNT, minted to dao.hst_pool [4]."""
    epoch = _epoch_arg(ix)
    roles = {_acc(ix, 4): Subtype.HST_POOL}
    events = []
    for op in value_ops(ctx, ix):
        if op.kind != MINT:
            events.append(_unmatched(ctx, ix, anc, op, f"issue_hst_pool_v0 {op.kind} is not a mint",
                                     epoch=epoch, day=epoch_day(epoch)))
            continue
        events.append(_emission(ctx, ix, anc, op, _label_destination(ctx, op.destination, roles), epoch, ""))
    return _with_legs(events)


def switch_mobile_ops_fund(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """HIP-138 one-off: HNT minted = emission/ops_fund; the MOBILE ops-fund burn = other (ops_fund_burn)."""
    hnt = ctx.config.helium.mint_of("HNT")
    events = []
    for op in value_ops(ctx, ix):
        if op.kind == MINT and op.mint == hnt:
            events.append(ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.EMISSION,
                                    subtype=Subtype.OPS_FUND, mint=op.mint, amount=op.amount,
                                    recipient_account=op.destination))
        else:
            events.append(_unmatched(ctx, ix, anc, op, "ops_fund_burn" if op.kind == BURN
                                     else f"switch_mobile_ops_fund {op.kind}"))
    return _with_legs(events)


# --- reversals and distributions -----------------------------------------------------------------
def no_emit(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """Unallocated rewards paid to the 'not_emitted' wallet and burned: negative emission."""
    events = []
    for op in value_ops(ctx, ix):
        if op.kind == BURN:
            events.append(ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.REVERSAL,
                                    subtype=Subtype.NO_EMIT, mint=op.mint, amount=op.amount,
                                    payer_account=op.source, payer_owner=_acc(ix, 1)))
        else:
            events.append(_unmatched(ctx, ix, anc, op, f"no_emit_v0 {op.kind}"))
    return _with_legs(events)


def claim_rewards(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """Delegation claim: a burn (non-voter, v1) is a reversal, otherwise a distribution (0 allowed)."""
    epoch = _epoch_arg(ix)
    ops = value_ops(ctx, ix)
    burns = [op for op in ops if op.kind == BURN]
    sub_dao = _sub_dao(ctx, _acc(ix, 6))
    pool, ata, authority = _acc(ix, 10), _acc(ix, 11), _acc(ix, 3)
    if burns:
        return [ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.REVERSAL,
                          subtype=Subtype.NON_VOTER_BURN, mint=burns[0].mint,
                          amount=sum(o.amount for o in burns), epoch=epoch, payer_account=pool,
                          sub_dao=sub_dao, reason=f"share of position authority {authority} burned"
                          " (position did not meet the voting requirement)")]
    paid = [op for op in ops if op.kind == TRANSFER]
    mint = paid[0].mint if paid and paid[0].mint else (ctx.balances.mint(pool) or _acc(ix, 8))
    return [ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.DISTRIBUTION,
                      subtype=Subtype.DELEGATION_CLAIM, mint=mint, amount=sum(o.amount for o in paid),
                      epoch=epoch, payer_account=pool, recipient_account=ata, recipient_owner=authority,
                      sub_dao=sub_dao)]


def lazy_distribute(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """Lazy-distributor payout of already-minted rewards (amount 0 is still an event)."""
    paid = [op for op in value_ops(ctx, ix) if op.kind == TRANSFER]
    return [ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.DISTRIBUTION,
                      subtype=Subtype.LAZY_DISTRIBUTOR, mint=_acc(ix, 3), amount=sum(o.amount for o in paid),
                      payer_account=_acc(ix, 4), recipient_account=_acc(ix, 7), recipient_owner=_acc(ix, 6))]


def fanout_distribute(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """(mini_)fanout payout: transfers summed per mint, one event (leg) per mint."""
    per_mint: dict[str, list[TokenOp]] = {}
    for op in value_ops(ctx, ix):
        if op.kind == TRANSFER:
            per_mint.setdefault(op.mint, []).append(op)
    events = []
    for mint, ops in per_mint.items():
        recipients = {o.destination for o in ops}
        events.append(ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.DISTRIBUTION,
                                subtype=Subtype.FANOUT, mint=mint, amount=sum(o.amount for o in ops),
                                payer_account=ops[0].source,
                                recipient_account=recipients.pop() if len(recipients) == 1 else ""))
    return _with_legs(events)


def treasury_redeem(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...]) -> list[FlowEvent]:
    """Conversion DNT -> treasury HNT: leg 0 = DNT burned, leg 1 = HNT paid. Neither usage nor emission."""
    ops = value_ops(ctx, ix)
    burned = [op for op in ops if op.kind == BURN]
    paid = [op for op in ops if op.kind == TRANSFER]
    if not burned or not paid:
        raise MissingAmount("redeem_v0 without its inner DNT burn and HNT transfer")
    owner = _acc(ix, 7)
    common = dict(network=HELIUM, flow_class=FlowClass.TRANSFER, subtype=Subtype.TREASURY_REDEEM)
    return [
        ctx.event(ix, anc, mint=burned[0].mint, amount=sum(o.amount for o in burned), leg=0,
                  payer_account=_acc(ix, 5), payer_owner=owner, **common),
        ctx.event(ix, anc, mint=paid[0].mint, amount=sum(o.amount for o in paid), leg=1,
                  payer_account=_acc(ix, 3), recipient_account=_acc(ix, 6), recipient_owner=owner, **common),
    ]


# --- rule table ----------------------------------------------------------------------------------
FLOW_INSTRUCTIONS: dict[str, dict[str, Rule]] = {
    "data_credits": {
        "mint_data_credits_v0": mint_data_credits,
        "burn_delegated_data_credits_v0": burn_delegated,
        "burn_without_tracking_v0": burn_without_tracking,
        "delegate_data_credits_v0": delegate_dc,
        "change_delegated_sub_dao_v0": change_delegated_sub_dao,
    },
    "helium_sub_daos": {
        "issue_rewards_v0": issue_rewards,
        "issue_hst_pool_v0": issue_hst_pool,
        "switch_mobile_ops_fund": switch_mobile_ops_fund,
        "claim_rewards_v0": claim_rewards,
        "claim_rewards_v1": claim_rewards,
    },
    "no_emit": {"no_emit_v0": no_emit},
    "lazy_distributor": {
        "distribute_rewards_v0": lazy_distribute,
        "distribute_compression_rewards_v0": lazy_distribute,
        "distribute_custom_destination_v0": lazy_distribute,
    },
    "fanout": {"distribute_v0": fanout_distribute},
    "mini_fanout": {"distribute_v0": fanout_distribute},
    "treasury_management": {"redeem_v0": treasury_redeem},
}
# instructions whose name the rules need even when the decoder cannot name them
KNOWN_INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    **{program: tuple(rules) for program, rules in FLOW_INSTRUCTIONS.items()},
    "helium_entity_manager": tuple(n for (p, n) in FEE_PARENTS if p == "helium_entity_manager"),
    "hexboosting": ("boost_v0",),
    "iot_routing_manager": ("initialize_organization_v0", "initialize_devaddr_constraint_v0"),
    "dc_auto_top": ("top_off_dc_v0", "top_off_hnt_v0"),
    "circuit_breaker": ("mint_v0", "transfer_v0", "burn_v0"),
}


class HeliumRules:
    """(program id, discriminator) -> rule, and -> (program, instruction) names; built once per config."""

    def __init__(self, programs: dict[str, str]) -> None:
        by_name = {name: pid for pid, name in programs.items()}
        self.names: dict[tuple[str, bytes], tuple[str, str]] = {}
        self.rules: dict[tuple[str, bytes], Rule] = {}
        for program, names in KNOWN_INSTRUCTIONS.items():
            pid = by_name.get(program)
            if pid is None:
                continue
            for name in names:
                key = (pid, anchor_discriminator(name))
                self.names[key] = (program, name)
                rule = FLOW_INSTRUCTIONS.get(program, {}).get(name)
                if rule is not None:
                    self.rules[key] = rule

    def rule_for(self, ix: Instruction) -> Rule | None:
        data = ix.data
        if not data or len(data) < 8:
            return None
        return self.rules.get((ix.program_id, bytes(data[:8])))


def loose_token_op(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...], op: TokenOp) -> list[FlowEvent]:
    """An SPL movement of a Helium mint under a Helium instruction that no flow rule claimed.

    Historical MOBILE fees (burn directly under onboard_mobile_hotspot_v0 / boost_v0) are
    usage; anything else is `other/unmatched` with the instruction that caused it.
    """
    parent = anc[-1] if anc else None
    if op.kind == BURN and parent is not None and op.mint == ctx.config.helium.mint_of("MOBILE"):
        subtype = MOBILE_FEE_PARENTS.get(ctx.name_of(parent))
        if subtype is not None:
            return [ctx.event(ix, anc, network=HELIUM, flow_class=FlowClass.USAGE_FEE, subtype=subtype,
                              mint=op.mint, amount=op.amount, payer_account=op.source,
                              payer_owner=op.authority, sub_dao=_parent_sub_dao(ctx, parent))]
    helium_ids = ctx.config.helium.program_ids
    cause = next((a for a in reversed(anc) if a.program_id in helium_ids
                  and ctx.name_of(a)[0] != "circuit_breaker"), parent)
    what = ctx.qualified(cause) if cause is not None else "?"
    info = ctx.config.symbol_of(op.mint)
    symbol = info.symbol if info else op.mint
    return [_unmatched(ctx, ix, anc, op, f"{op.kind} of {symbol} under {what} matches no flow rule")]

