"""Typed decode errors.

Undecodable input must never crash the indexer: it becomes a dead-letter record that
carries *why* (a short machine code) and *what* (the raw bytes), so it can be replayed
once the decoder learns the missing layout.
"""

from __future__ import annotations

# The machine codes in use. Downstream (dead-letter topic/table) groups by these.
REASONS = frozenset(
    {
        "short_data",            # the layout needs more bytes than the instruction carries
        "trailing_data",         # bytes left over after the last argument
        "unknown_discriminator",  # the program is known but this 8-byte (or 1-byte) tag is not
        "unknown_program",       # no spec/IDL registered for the program id
        "bad_utf8",              # a Borsh string that is not valid UTF-8
        "absurd_length",         # a vec/string/bytes length that cannot fit in the data at all
        "bad_enum_variant",      # enum / Option / COption tag out of range
        "bad_bool",              # a Borsh bool byte other than 0 or 1
        "malformed_transaction",  # a getTransaction/getBlock result that is not a valid transaction
        "rpc_error",             # a JSON-RPC error response (or a null result) where a transaction was expected
    }
)


class DecodeError(Exception):
    """A typed, data-carrying decode failure.

    `reason` is a short machine code from REASONS, `detail` human text, `raw` the
    bytes that failed (None when not applicable), `program_id` the program the bytes
    were addressed to (None when not known).
    """

    __slots__ = ("reason", "detail", "raw", "program_id")

    def __init__(
        self,
        reason: str,
        detail: str = "",
        raw: bytes | None = None,
        program_id: str | None = None,
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.raw = raw
        self.program_id = program_id
        super().__init__(reason, detail)

    def __reduce__(self):
        # keep raw/program_id across pickling (multiprocessing workers hand errors back)
        return (DecodeError, (self.reason, self.detail, self.raw, self.program_id))

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason

    def __repr__(self) -> str:
        return f"DecodeError({self.reason!r}, {self.detail!r}, program_id={self.program_id!r})"

    def to_dict(self) -> dict:
        """JSON-friendly form for dead-letter records (raw as lowercase hex)."""
        return {
            "reason": self.reason,
            "detail": self.detail,
            "raw_hex": None if self.raw is None else bytes(self.raw).hex(),
            "program_id": self.program_id,
        }
