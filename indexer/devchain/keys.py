"""Deterministic keys for the simulated ledger.

Every key is a pure function of (ledger seed, label), so the same config always yields the same
addresses, signatures and therefore the same bytes. Signers get real ed25519 keypairs (their
signatures verify); accounts that never sign only need an address, which is a cheap hash.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from indexer.devchain import accounts as A


class KeyFactory:
    """Labels -> keypairs / addresses, memoised (deriving a keypair costs ~20 us)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._keypairs: dict[str, Keypair] = {}
        self._addresses: dict[str, str] = {}
        self._by_address: dict[str, Keypair] = {}

    def _digest(self, label: str) -> bytes:
        return hashlib.sha256(f"depinflow-devchain/{self.seed}/{label}".encode()).digest()

    def keypair(self, label: str) -> Keypair:
        kp = self._keypairs.get(label)
        if kp is None:
            kp = Keypair.from_seed(self._digest(label))
            self._keypairs[label] = kp
            addr = str(kp.pubkey())
            self._addresses.setdefault("kp:" + label, addr)
            self._by_address[addr] = kp
        return kp

    def signer(self, label: str) -> str:
        """Address of the keypair `label` (use `keypair(label)` to sign)."""
        addr = self._addresses.get("kp:" + label)
        if addr is None:
            addr = str(self.keypair(label).pubkey())
        return addr

    def keypair_for(self, address: str) -> Keypair | None:
        """The keypair behind an address created by `keypair`/`signer` (the builder's keyring)."""
        return self._by_address.get(address)

    def address(self, label: str) -> str:
        """A non-signing account address (a hash; may be on or off the curve, like PDAs are not)."""
        addr = self._addresses.get(label)
        if addr is None:
            addr = str(Pubkey(self._digest(label)))
            self._addresses[label] = addr
        return addr


@lru_cache(maxsize=65536)
def ata(owner: str, mint: str, token_program: str = A.TOKEN_PROGRAM) -> str:
    """The associated token account address, exactly as the ATA program derives it."""
    pda, _ = Pubkey.find_program_address(
        [bytes(Pubkey.from_string(owner)), bytes(Pubkey.from_string(token_program)),
         bytes(Pubkey.from_string(mint))],
        Pubkey.from_string(A.ATA_PROGRAM),
    )
    return str(pda)


@lru_cache(maxsize=65536)
def pda(program_id: str, *seeds: bytes) -> str:
    """A program-derived address (used for accounts whose seeds are public, e.g. epoch infos)."""
    addr, _ = Pubkey.find_program_address(list(seeds), Pubkey.from_string(program_id))
    return str(addr)


def b58(addr: str) -> bytes:
    return bytes(Pubkey.from_string(addr))
