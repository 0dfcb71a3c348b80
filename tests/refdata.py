"""Locate the shared reference material that tests may read (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def reference_root() -> Path:
    """The reference folder: $DEPINFLOW_REFERENCE, else `../shared/reference` next to the checkout."""
    env = os.environ.get("DEPINFLOW_REFERENCE")
    candidates = [Path(env)] if env else []
    candidates += [_REPO.parent / "shared" / "reference", Path("/work/shared/reference")]
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(
        "shared reference material not found; set DEPINFLOW_REFERENCE to the shared/reference folder"
    )


def reference_path(relative: str) -> Path:
    return reference_root() / relative
