"""The chain indexer's metrics: the node's head and the newest block it published (lc_chain_*)."""

from __future__ import annotations

from kits.chain import MemorySink
from prometheus_client import REGISTRY

from indexers.chain.engine import Step


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"chain_id": "31337"})


def test_head_and_last_indexed_block_follow_the_chain(emitters) -> None:
    emitters.node.mine(40)
    indexer = emitters.indexer(MemorySink(), confirmations=5)
    try:
        for _ in range(100):
            if indexer.step() is Step.IDLE:
                break
        head = emitters.node.head()
        assert gauge("lc_chain_head_block") == head
        assert gauge("lc_chain_last_indexed_block") == head - 5
        emitters.node.mine(3)
        indexer.step()
        assert gauge("lc_chain_head_block") == head + 3
        assert gauge("lc_chain_last_indexed_block") == head - 2
    finally:
        indexer.close()
