"""Render flow rules: RENDER is a plain SPL Token mint, so every rule keys on one SPL instruction.

Render has no program of its own on Solana (render.md section 1): jobs are paid off-chain and
the Foundation burns RENDER in batches from its burn wallet (BME) and mints emissions up front.
The wallets, the correction list and the Wormhole programs are data
(schemas/networks/render.json), extendable without code changes. Order of the tests matters:
Wormhole first (an upgrade/migration is neither usage nor emission whatever it looks like),
then the correction list, then the ordinary rules.
"""

from __future__ import annotations

from indexer.decode.model import Instruction
from indexer.networks.context import TxContext
from indexer.networks.events import FlowClass, FlowEvent, Network, Subtype
from indexer.networks.tokens import BURN, MINT, TokenOp

RENDER = Network.RENDER.value


def _classify(ctx: TxContext, op: TokenOp) -> tuple[str, str, str]:
    """(flow_class, subtype, reason) of one RENDER movement."""
    cfg = ctx.config.render
    if ctx.wormhole:
        return FlowClass.OTHER, Subtype.MIGRATION, f"transaction invokes {ctx.wormhole}"
    correction = ctx.tx.signature in cfg.correction_signatures
    if op.kind == BURN:
        if correction:
            return FlowClass.OTHER, Subtype.CORRECTION, "burn on the correction list (equal re-mint)"
        source_owner = ctx.balances.owner(op.source) or op.authority
        if op.source in cfg.burn_accounts or source_owner in cfg.burn_owners:
            return FlowClass.USAGE_FEE, Subtype.BME_BURN, ""
        return FlowClass.OTHER, Subtype.HOLDER_BURN, "burn from a wallet not labelled as a burn wallet"
    if op.kind == MINT:
        if correction:
            return FlowClass.OTHER, Subtype.CORRECTION, "mint on the correction list (re-mint of a manual burn)"
        return FlowClass.EMISSION, Subtype.RENDER_MINT, ""
    if op.destination in cfg.burn_accounts or ctx.balances.owner(op.destination) in cfg.burn_owners:
        return FlowClass.TRANSFER, Subtype.BURN_WALLET_DEPOSIT, ""
    return FlowClass.TRANSFER, Subtype.TOKEN_TRANSFER, ""


def classify_render_op(ctx: TxContext, ix: Instruction, anc: tuple[Instruction, ...],
                       op: TokenOp) -> FlowEvent:
    """The flow event of an SPL Token instruction moving RENDER, keyed on that instruction."""
    flow_class, subtype, reason = _classify(ctx, op)
    payer_owner = ctx.balances.owner(op.source) or (op.authority if op.source else "")
    return ctx.event(ix, anc, network=RENDER, flow_class=flow_class, subtype=subtype, mint=op.mint,
                     amount=op.amount, payer_account=op.source, payer_owner=payer_owner,
                     recipient_account=op.destination, reason=reason)
