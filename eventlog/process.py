"""Settings every stage process applies when it starts (`lc run`, a range worker, a benchmark)."""

from __future__ import annotations

import gc

# A stage holds many small objects alive at once (a range's messages, a partition's evidence), so
# CPython's default gen-0 threshold (700 allocations) makes the cycle collector rescan them over and
# over: with it the chain indexer spent half its decode time collecting (bench/chain_indexer.py).
# Reference counting still frees everything acyclic at once; cycles wait a little longer.
GC_THRESHOLDS = (50_000, 10, 10)


def tune_garbage_collector() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
