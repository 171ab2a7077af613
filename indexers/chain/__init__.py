"""The chain indexer: every pipeline contract fact on Kafka, reorg-safe.

Layers (pure first): `abi`/`decode`/`catalogue` (what to read and how to decode it), `keying`
(message keys), `messages` (event ids, payloads, retractions), `reorg` (window, walk back),
`ranges` (adaptive getLogs ranges); then I/O: `rpc` (JSON-RPC), `engine` (the loop over a source and
a sink), `kafka` (transactional sink, state read back from the output), `service` (entry points).
"""

from indexers.chain.service import AlreadySeeded, SeedResult, run_indexer, seed

__all__ = ["AlreadySeeded", "SeedResult", "run_indexer", "seed"]
