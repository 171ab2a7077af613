"""Fixtures of the chain indexer tests: anvil with a log emitter standing in for each pipeline contract."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from chainkit import Anvil, MemorySink

from indexers.chain.catalogue import ROLES, DecoderTable, build_decoder_table, spec_events
from indexers.chain.engine import ChainIndexer
from indexers.chain.keying import ChainKeyer
from indexers.chain.ranges import AdaptiveRange
from indexers.chain.reorg import ReorgWindow
from indexers.chain.rpc import ChainRpc


@dataclass
class EmitterChain:
    node: Anvil
    url: str
    addresses: dict[str, str]
    table: DecoderTable

    def indexer(self, sink: MemorySink, *, confirmations: int = 12, rollback_cap: int = 64,
                max_range: int = 1000) -> ChainIndexer:
        return ChainIndexer(
            chain_id=31337, source=ChainRpc(self.url), table=self.table, sink=sink,
            keyer=ChainKeyer(self.addresses["ChallengePay"]), window=ReorgWindow(rollback_cap),
            ranges=AdaptiveRange(max_range), confirmations=confirmations,
        )


@pytest.fixture
def emitters(anvil: str) -> Iterator[EmitterChain]:
    node = Anvil(anvil)
    addresses = {role: node.deploy_emitter() for role in ROLES}
    yield EmitterChain(node, anvil, addresses, build_decoder_table(addresses, spec_events()))
    node.close()


@pytest.fixture
def abis() -> dict[str, dict]:
    """role -> event name -> EventAbi, from the spec signatures."""
    return {role: {abi.name: abi for abi in events} for role, events in spec_events().items()}
