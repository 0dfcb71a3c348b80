"""Imported once by the backfill workers' fork server (pipelines.listen.workers.PRELOAD).

WHY: a worker is a fork of the fork server, so whatever the server built before forking is free in
every worker. The program registry (every IDL under schemas/programs compiled into decoders, here all
of them at once: compile_all) costs ~0.23 CPU-s to build and the network config a little more; built lazily, each worker paid that on its
first chunk, at every start (~25 us per transaction of an 18k-transaction backfill with 2 workers).
Both are process-wide caches (functools.lru_cache), so building them here is all it takes.
Everything the server built is then frozen out of the cyclic garbage collector (gc.freeze): a worker's
collections never traverse the modules and the registry, and never touch (copy) their shared pages.
"""

from __future__ import annotations

import gc

from indexer.decode.registry import default_registry
from indexer.networks.config import default_config

default_registry().compile_all()   # decoders are otherwise compiled on first use, in every worker
default_config()
gc.collect()
gc.freeze()
