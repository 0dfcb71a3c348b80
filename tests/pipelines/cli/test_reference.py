"""docs/cli.md is the generated command reference the README points to: it must match the parsers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _clean_env() -> dict[str, str]:
    """Defaults read from the environment must not leak a developer's settings into the docs."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SOLANA_", "DEPINFLOW_"))}


def test_docs_cli_md_is_current():
    out = subprocess.run([sys.executable, "-m", "pipelines.cli.reference"], capture_output=True, text=True,
                         check=True, env=_clean_env(), cwd=REPO, timeout=120)
    assert out.stdout == (REPO / "docs" / "cli.md").read_text(), (
        "docs/cli.md is stale: regenerate with `python -m pipelines.cli.reference > docs/cli.md`")


def test_every_command_is_documented():
    from pipelines.cli.main import COMMANDS

    text = (REPO / "docs" / "cli.md").read_text()
    for name in COMMANDS:
        assert f"## `depinflow {name}`" in text
