"""The chain indexer: every pipeline contract fact on Kafka, reorg-safe.

Layers (pure first): `abi`/`decode`/`catalogue` (what to read and how to decode it), `keying`
(message keys), `messages` (event ids, payloads, retractions), `codec` (ChainEvent Avro bytes),
`reorg` (window, walk back), `ranges` (adaptive getLogs ranges); then I/O: `rpc` (JSON-RPC),
`prepare` (one range fetched, decoded and encoded), `workers` (ranges prepared ahead, in worker
processes), `engine` (the ordered loop over prepared ranges and a sink), `kafka` (transactional
sink, state read back from the output), `service` (entry points).
"""

from indexers.chain.service import AlreadySeeded, SeedResult, run_indexer, seed

__all__ = ["AlreadySeeded", "SeedResult", "run_indexer", "seed"]
