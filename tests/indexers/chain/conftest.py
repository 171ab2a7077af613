"""Fixtures of the chain indexer tests: anvil with a log emitter standing in for each pipeline contract."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kits.chain import Anvil, MemorySink, wait_for_leaders

from cli.settings import Settings
from eventlog.admin import create_topics
from eventlog.topics import CHAIN_BLOCKS, CHAIN_EVENTS
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
                max_range: int = 1000, url: str | None = None, timeout: float = 30.0,
                workers: int = 0, log_budget: int | None = None) -> ChainIndexer:
        """An indexer on this chain (or on `url`, a proxy in front of it)."""
        return ChainIndexer(
            chain_id=31337, source=ChainRpc(url or self.url, timeout=timeout), table=self.table, sink=sink,
            keyer=ChainKeyer(self.addresses["ChallengePay"]), window=ReorgWindow(rollback_cap),
            ranges=AdaptiveRange(max_range, log_budget=log_budget), confirmations=confirmations, workers=workers,
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


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = Settings.from_env().kafka_bootstrap
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError:
        pytest.skip(f"no Kafka broker at {bootstrap} (set LC_KAFKA_BOOTSTRAP)")
    return bootstrap


@pytest.fixture
def indexer_settings(kafka_bootstrap: str, emitters: EmitterChain, tmp_path: Path) -> Settings:
    """Settings of one indexer run: own topic prefix, the emitters as the deployment, anvil as the node."""
    deployments = tmp_path / "deployments.json"
    deployments.write_text(json.dumps(emitters.addresses))
    settings = Settings.from_env(
        kafka_bootstrap=kafka_bootstrap, schema_registry_url="", topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        rpc_url=emitters.url, chain_id=31337, deployments_file=str(deployments), chain_poll_seconds=0.05,
        confirmations=12, chain_rollback_cap=64,
    )
    create_topics(settings)
    wait_for_leaders(settings, (CHAIN_BLOCKS, CHAIN_EVENTS))
    return settings
