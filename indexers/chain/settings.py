"""The chain indexer's settings (the endpoint and the deployments file are core settings)."""

from __future__ import annotations

from dataclasses import dataclass

from eventlog.config import CoreSettings, setting


@dataclass(frozen=True, repr=False)
class ChainIndexerSettings(CoreSettings):
    confirmations: int = setting(12, "blocks a log must be buried under before the chain indexer publishes it")
    chain_rollback_cap: int = setting(
        256, "deepest reorg (in blocks) the chain indexer retracts on its own; deeper halts it for an operator"
    )
    chain_range_log_budget: int = setting(
        1000, "pipeline logs the chain indexer aims for per block range (sized from the density just seen)")
    chain_workers: int = setting(
        2, "processes that fetch, decode and encode the next block ranges while the chain indexer publishes"
           " (0: one thread in the indexer's process)")
    chain_poll_seconds: float = setting(1.0, "seconds the chain indexer waits for new blocks when it has caught up")
