"""Addresses the listener follows per network (getSignaturesForAddress backfill, logsSubscribe).

Helium: every Helium program id (CPI'd programs are always in the transaction's account keys,
so this also finds flows wrapped by tuktuk or other callers). Render has no program: the RENDER
mint (written by every MintTo/Burn, referenced by every *Checked transfer) plus the burn
wallets' token accounts (deposits arrive there as plain Transfers that do not name the mint).
"""

from __future__ import annotations

from indexer.networks.config import NetworkConfig, default_config
from indexer.networks.events import Network


def watched_addresses(config: NetworkConfig | None = None) -> dict[str, tuple[str, ...]]:
    """Per network, the sorted, de-duplicated addresses to follow."""
    cfg = config or default_config()
    helium = sorted(cfg.helium.programs)
    render = {cfg.render.mint.mint, *cfg.render.burn_accounts}
    return {Network.HELIUM.value: tuple(helium), Network.RENDER.value: tuple(sorted(render))}


WATCHED_ADDRESSES: dict[str, tuple[str, ...]] = watched_addresses()
