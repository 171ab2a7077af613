"""Settings every stage process applies when it starts (`lc run`, `lc rebuild`, a range worker, a benchmark)."""

from __future__ import annotations

import gc
import sys

# A stage holds many small objects alive at once (a range's messages, a partition's evidence), so
# CPython's default gen-0 threshold (700 allocations) makes the cycle collector rescan them over and
# over: with it the chain indexer spent half its decode time collecting (bench/chain_indexer.py).
# Reference counting still frees everything acyclic at once; cycles wait a little longer.
GC_THRESHOLDS = (50_000, 10, 10)

# How long a thread that waits for the GIL lets the running thread keep it (CPython's default: 5 ms).
# A projector's writer thread gives up the GIL for every round trip to PostgreSQL and then waits for
# it behind the consumer thread's decoding, up to the whole interval each time, a dozen times per
# batch: with 5 ms the writer spent more time waiting for the GIL than for the database and the
# projector wrote 40% fewer rows per second (bench/projector.py, docs/decisions.md). A single-threaded
# stage is not affected: the interval only counts while another thread asks for the GIL.
SWITCH_INTERVAL_S = 0.0005


def tune_process() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
