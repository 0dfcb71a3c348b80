"""Solana JSON-RPC access: HTTP client (batches, rate limits, retries, typed errors) and websocket hints."""

from indexer.rpc.client import RetryPolicy, RpcClient
from indexer.rpc.errors import (
    BlockNotAvailable,
    RateLimited,
    RetriesExhausted,
    RpcError,
    RpcHttpError,
    RpcServerError,
    RpcTransportError,
    SlotSkipped,
)
from indexer.rpc.redact import redact_url
from indexer.rpc.stats import RpcStats
from indexer.rpc.ws import Subscription, WsEvent, WsSubscriber

__all__ = [
    "BlockNotAvailable", "RateLimited", "RetriesExhausted", "RetryPolicy", "RpcClient", "RpcError",
    "RpcHttpError", "RpcServerError", "RpcStats", "RpcTransportError", "SlotSkipped", "Subscription",
    "WsEvent", "WsSubscriber", "redact_url",
]
