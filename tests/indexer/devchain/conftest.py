"""Fixtures: one small generated ledger per session (forks and failures made frequent so every
path appears), served by one server in "fast" mode (everything finalized)."""

from __future__ import annotations

import pytest

from indexer.devchain.ledger import SimConfig, generate_ledger
from indexer.devchain.server import serve_in_thread

SMALL = dict(seed=11, slots_per_day=500, tx_per_slot=1.5, fork_rate=0.03, failed_rate=0.05, skipped_rate=0.08)


@pytest.fixture(scope="session")
def small_config() -> SimConfig:
    return SimConfig(**SMALL)


@pytest.fixture(scope="session")
def small_ledger(small_config):
    return generate_ledger(small_config)


@pytest.fixture(scope="session")
def fast_server(small_ledger):
    handle = serve_in_thread(small_ledger)
    yield handle
    handle.stop()
