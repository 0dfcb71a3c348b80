"""Durable listener progress: where the backfill and the live tail may resume after any crash.

Rules (DESIGN.md "gaps fail closed"):
- A position is written only after everything before it was acknowledged by Kafka (the sources hand
  the store positions that already satisfy this; the store only makes them durable).
- Writes are atomic: a temp file in the same directory, fsync, rename over the old one, fsync the
  directory. A kill -9 at any instant leaves either the old or the new checkpoint, never half of one.

Shape (JSON, versioned):
- `seam_slot`: the finalized slot S chosen at first start. Transactions with slot <= S belong to the
  backfill, slot > S to the live tail, so the two never overlap and nothing falls between them.
- per address: `seam` (its newest signature with slot <= S), `backfill` (`before`: the oldest signature
  processed so far, `done`), `live` (newest signature such that every older one after the seam is
  fully processed, finalized or retracted).
- block mode (`mode` = "blocks"): `block_slot`, every slot up to it is done and final (the walk resumes
  at block_slot + 1).
- `submitted`: how far sends had been *submitted* (not acknowledged) at the last save. After a crash,
  work between the checkpoint and these marks is re-sent: that is where Kafka duplicates can appear,
  and the listener counts them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

CHECKPOINT_VERSION = 1


@dataclass(slots=True)
class SigPos:
    """A position in an address's signature history."""

    sig: str | None
    slot: int
    block_time: int | None = None

    @classmethod
    def from_dict(cls, data: dict | None) -> SigPos | None:
        if data is None:
            return None
        return cls(data.get("sig"), int(data["slot"]), data.get("block_time"))


@dataclass(slots=True)
class AddressState:
    seam: SigPos | None = None           # newest signature with slot <= seam_slot (None: none exists)
    seam_known: bool = False             # the seam was looked up (seam None then means "no history")
    before: SigPos | None = None         # backfill: oldest processed signature (resume with before=sig)
    backfill_done: bool = False
    live: SigPos | None = None           # live watermark (None: nothing after the seam yet)

    def to_dict(self) -> dict:
        return {
            "seam": asdict(self.seam) if self.seam else None,
            "seam_known": self.seam_known,
            "backfill": {"before": asdict(self.before) if self.before else None, "done": self.backfill_done},
            "live": asdict(self.live) if self.live else None,
        }

    @classmethod
    def from_dict(cls, data: dict) -> AddressState:
        bf = data.get("backfill") or {}
        return cls(seam=SigPos.from_dict(data.get("seam")), seam_known=bool(data.get("seam_known")),
                   before=SigPos.from_dict(bf.get("before")), backfill_done=bool(bf.get("done")),
                   live=SigPos.from_dict(data.get("live")))


@dataclass
class Checkpoint:
    seam_slot: int | None = None
    from_slot: int | None = None          # backfill lower bound (inclusive)
    since_ts: int | None = None           # backfill lower bound on blockTime (inclusive)
    addresses: dict[str, AddressState] = field(default_factory=dict)
    backfill_low_slot: int | None = None  # every tx with slot > this (and <= seam) is done
    live_slot: int | None = None          # every live tx with slot <= this is done (min over addresses)
    submitted_backfill_low: int | None = None
    submitted_live_high: int | None = None
    block_slot: int | None = None         # block mode: every slot up to this one is done and final
    # published at `confirmed`, not yet finalized or retracted: signature -> {slot, block_time,
    # event_ids, network}. Written BEFORE the events are sent (write-ahead), so that a crash followed by
    # a fork still retracts them on the next start.
    pending: dict[str, dict] = field(default_factory=dict)
    mode: str = "addresses"               # addresses | blocks
    networks: list[str] = field(default_factory=list)
    updated_at: float = 0.0
    version: int = CHECKPOINT_VERSION

    def address(self, addr: str) -> AddressState:
        state = self.addresses.get(addr)
        if state is None:
            state = self.addresses[addr] = AddressState()
        return state

    @property
    def backfill_done(self) -> bool:
        return bool(self.addresses) and all(a.backfill_done for a in self.addresses.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "updated_at": self.updated_at,
            "networks": self.networks,
            "seam_slot": self.seam_slot,
            "lower": {"from_slot": self.from_slot, "since_ts": self.since_ts},
            "backfill_low_slot": self.backfill_low_slot,
            "live_slot": self.live_slot,
            "mode": self.mode,
            "block_slot": self.block_slot,
            "pending": self.pending,
            "submitted": {"backfill_low": self.submitted_backfill_low, "live_high": self.submitted_live_high},
            "addresses": {a: s.to_dict() for a, s in sorted(self.addresses.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        version = data.get("version")
        if version != CHECKPOINT_VERSION:
            raise CheckpointError(f"unsupported checkpoint version {version!r}")
        lower = data.get("lower") or {}
        sub = data.get("submitted") or {}
        return cls(
            seam_slot=data.get("seam_slot"), from_slot=lower.get("from_slot"), since_ts=lower.get("since_ts"),
            addresses={a: AddressState.from_dict(s) for a, s in (data.get("addresses") or {}).items()},
            backfill_low_slot=data.get("backfill_low_slot"), live_slot=data.get("live_slot"),
            submitted_backfill_low=sub.get("backfill_low"), submitted_live_high=sub.get("live_high"),
            networks=list(data.get("networks") or []), updated_at=float(data.get("updated_at") or 0.0),
            block_slot=data.get("block_slot"), mode=data.get("mode") or "addresses",
            pending=dict(data.get("pending") or {}),
        )


class CheckpointError(RuntimeError):
    """The checkpoint file exists but cannot be used (corrupt or from an incompatible version)."""


class CheckpointStore:
    """One JSON file, replaced atomically. `saves` counts successful writes (for metrics and tests)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.saves = 0

    def load(self) -> Checkpoint | None:
        """The last saved checkpoint, or None on first start. A corrupt file raises: fail closed."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return Checkpoint.from_dict(orjson.loads(raw))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {self.path} is unreadable: {exc}") from exc

    def save(self, checkpoint: Checkpoint) -> None:
        checkpoint.updated_at = time.time()
        data = orjson.dumps(checkpoint.to_dict(), option=orjson.OPT_INDENT_2)
        atomic_write(self.path, data)
        self.saves += 1


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
