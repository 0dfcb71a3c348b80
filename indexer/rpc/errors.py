"""Typed Solana JSON-RPC errors.

WHY typed: the caller's correct reaction depends on the kind of failure, and peers' users lose data
exactly where those kinds are confused (peers.md §4): a skipped slot (-32007/-32009) is a permanent,
meaningful answer ("there is no block here"), never an empty block and never something to retry
forever; a block that is not available yet (-32004) or a rate limit (429) is transient and must be
retried after the right pause. Every error keeps the method so metrics can be split by method and code.
"""

from __future__ import annotations

# Agave `rpc/src/custom_error.rs` (and JSON-RPC 2.0 standard codes).
BLOCK_CLEANED_UP = -32001
SEND_TX_PREFLIGHT_FAILURE = -32002
BLOCK_NOT_AVAILABLE = -32004
NODE_UNHEALTHY = -32005
SLOT_SKIPPED = -32007
NO_SNAPSHOT = -32008
LONG_TERM_STORAGE_SLOT_SKIPPED = -32009
KEY_EXCLUDED_FROM_SECONDARY_INDEX = -32010
TRANSACTION_HISTORY_NOT_AVAILABLE = -32011
BLOCK_STATUS_NOT_AVAILABLE_YET = -32014
UNSUPPORTED_TRANSACTION_VERSION = -32015
MIN_CONTEXT_SLOT_NOT_REACHED = -32016
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

#: Server answers that mean "not now, try again shortly".
RETRYABLE_CODES = frozenset({
    BLOCK_NOT_AVAILABLE, NODE_UNHEALTHY, BLOCK_STATUS_NOT_AVAILABLE_YET, MIN_CONTEXT_SLOT_NOT_REACHED,
    INTERNAL_ERROR,
})
#: Server answers that mean "this slot has no block, and never will".
SKIPPED_CODES = frozenset({SLOT_SKIPPED, LONG_TERM_STORAGE_SLOT_SKIPPED})


class RpcError(Exception):
    """Base of every error the RPC client raises or returns."""

    retryable: bool = False

    def __init__(self, message: str, *, method: str = "") -> None:
        super().__init__(message)
        self.method = method

    @property
    def code_label(self) -> str:
        """A short label for metrics (`rpc_errors_total{code=...}`)."""
        return type(self).__name__


class RpcTransportError(RpcError):
    """Connection refused/reset, timeout, truncated or malformed body: the request may not have run."""

    retryable = True

    @property
    def code_label(self) -> str:
        return "transport"


class RpcHttpError(RpcError):
    """A non-200 HTTP status (5xx are retryable; 4xx other than 429 are not)."""

    def __init__(self, status: int, message: str = "", *, method: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message or f"HTTP {status}", method=method)
        self.status = status
        self.retry_after = retry_after
        self.retryable = status >= 500 or status == 429

    @property
    def code_label(self) -> str:
        return f"http_{self.status}"


class RateLimited(RpcHttpError):
    """HTTP 429: the provider asks us to slow down, usually with Retry-After seconds."""

    def __init__(self, message: str = "", *, method: str = "", retry_after: float | None = None) -> None:
        super().__init__(429, message or "HTTP 429 Too Many Requests", method=method, retry_after=retry_after)


class RpcServerError(RpcError):
    """A JSON-RPC `error` object returned by the node."""

    def __init__(self, code: int, message: str, *, method: str = "", data: object = None) -> None:
        super().__init__(f"{code}: {message}", method=method)
        self.code = code
        self.rpc_message = message
        self.data = data
        self.retryable = code in RETRYABLE_CODES

    @property
    def code_label(self) -> str:
        return str(self.code)


class BlockNotAvailable(RpcServerError):
    """-32004: the node has not got this block (yet); retried with backoff."""


class NodeUnhealthy(RpcServerError):
    """-32005: the node is behind; retried with backoff."""


class SlotSkipped(RpcServerError):
    """-32007 / -32009: the slot was skipped (or is missing from long-term storage).

    A definitive answer, not an empty block: it is returned (never retried) so that callers can record
    the slot as skipped rather than as "had nothing of interest".
    """

    @property
    def slot(self) -> int | None:
        for word in self.rpc_message.replace(",", " ").split():
            if word.isdigit():
                return int(word)
        return None


class RetriesExhausted(RpcError):
    """A retryable failure persisted through every attempt; `last` is the final error."""

    def __init__(self, last: RpcError, attempts: int) -> None:
        super().__init__(f"{last.method or 'rpc'}: gave up after {attempts} attempts: {last}", method=last.method)
        self.last = last
        self.attempts = attempts

    @property
    def code_label(self) -> str:
        return "exhausted"


def server_error(code: int, message: str, *, method: str = "", data: object = None) -> RpcServerError:
    """Build the most specific RpcServerError subclass for a JSON-RPC error object."""
    if code in SKIPPED_CODES:
        cls: type[RpcServerError] = SlotSkipped
    elif code == BLOCK_NOT_AVAILABLE:
        cls = BlockNotAvailable
    elif code == NODE_UNHEALTHY:
        cls = NodeUnhealthy
    else:
        cls = RpcServerError
    return cls(code, message, method=method, data=data)
