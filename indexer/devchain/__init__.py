"""Chain simulator: a deterministic Helium + Render ledger served over the real Solana JSON-RPC.

    from indexer.devchain import SimConfig, generate_ledger, serve_in_thread
    ledger = generate_ledger(SimConfig(seed=7, days=1))
    ledger.truth_lines()          # finalized ground truth, flow-rules line shape
    ledger.expected_events()      # per event: event_id, class, subtype, mint, amount, day, forked ...
    with serve_in_thread(ledger) as node:   # node.url / node.ws_url, node.advance(n), node.finalize_all()
        ...

Modules: ledger (SimConfig, Ledger, generate_ledger), gen_helium / gen_render / gen_noise (activity),
txbuild (compiler, signer, meta), render (RPC JSON shapes), recorded (real fixtures), server
(JSON-RPC + websocket), faults (FaultConfig).
"""

from indexer.devchain.faults import FaultConfig
from indexer.devchain.ledger import Block, Ledger, SimConfig, generate_ledger
from indexer.devchain.server import DevchainServer, ServerHandle, serve_in_thread

__all__ = ["Block", "DevchainServer", "FaultConfig", "Ledger", "ServerHandle", "SimConfig", "generate_ledger",
           "serve_in_thread"]
