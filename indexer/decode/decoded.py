"""DecodedInstruction: the decoder's output record (re-exported by indexer.decode.registry).

Kept in its own module so the IDL compiler and the SPL Token decoder can build it directly
(generated decoders construct it inline) without importing the registry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class DecodedInstruction:
    program: str              # program name, e.g. "data_credits", "spl-token"
    name: str                 # instruction name as in the IDL / jsonParsed type
    args: dict                # canonical python values (see indexer.decode.anchor_idl docstring)
    accounts: dict[str, str]  # IDL account name -> base58 (groups flattened as "group.name")
    extra_accounts: list[str]  # remaining accounts beyond the IDL list
