"""The chain indexer: every pipeline contract fact on Kafka, reorg-safe.

Layers (pure first): `abi`/`decode`/`catalogue` (what to read and how to decode it), `keying`
(message keys), `messages` (event ids, payloads, retractions), `codec` (ChainEvent Avro bytes),
`reorg` (window, walk back), `ranges` (adaptive getLogs ranges); then I/O: `rpc` (JSON-RPC),
`prepare` (one range fetched, decoded and encoded), `workers` (ranges prepared ahead, in worker
processes), `engine` (the ordered loop over prepared ranges and a sink), `kafka` (transactional
sink, state read back from the output), `service` (entry points).
"""

from __future__ import annotations

from typing import Any

__all__ = ["AlreadySeeded", "SeedResult", "run_indexer", "seed"]


def __getattr__(name: str) -> Any:
    # imported on first use: every stage reads `indexers.chain.settings` (through cli.settings), and the
    # indexer itself (web3's helpers, httpx, the worker pool) would add a good half second to its start
    if name in __all__:
        from indexers.chain import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
