"""Hypothesis profiles for the bad-input suites.

Why named profiles instead of loading one globally: other areas' tests set their own example
counts, and a global `load_profile` would silently change them. Each fuzz test takes its budget
from `budget(default, long)` and the shared settings from the registered profile, so
`DEPINFLOW_LONG=1` scales every fuzz test at once (x25 by default) without touching the rest.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("DEPINFLOW_LONG") == "1"
LONG_FACTOR = int(os.environ.get("DEPINFLOW_FUZZ_FACTOR", "25"))

settings.register_profile(
    "depinflow-fuzz", deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.large_base_example])
settings.register_profile("depinflow-fuzz-long", settings.get_profile("depinflow-fuzz"))
PROFILE = settings.get_profile("depinflow-fuzz-long" if LONG else "depinflow-fuzz")


def budget(default: int) -> settings:
    """Settings with `default` examples (x LONG_FACTOR under DEPINFLOW_LONG=1)."""
    return settings(PROFILE, max_examples=default * LONG_FACTOR if LONG else default)
