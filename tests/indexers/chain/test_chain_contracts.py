"""Every indexed event type, produced by real transactions on the project's contracts, arrives decoded.

The reference for "the right fields" is web3's own ABI decoding of the same receipt logs (too slow
for the indexer, fine as an oracle).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest
from kits.background import Background, wait_for
from kits.chain import MemorySink, published, wait_for_leaders

from eventlog.admin import create_topics
from eventlog.topics import CHAIN_BLOCKS, CHAIN_EVENTS
from indexers.chain import run_indexer
from indexers.chain.abi import avro_type
from indexers.chain.catalogue import ROLES, build_decoder_table
from indexers.chain.engine import ChainIndexer, Step
from indexers.chain.keying import ChainKeyer
from indexers.chain.ranges import AdaptiveRange
from indexers.chain.reorg import ReorgWindow
from indexers.chain.rpc import ChainRpc

scenario = pytest.importorskip("devchain.scenario")
system_module = pytest.importorskip("devchain.system")


@pytest.fixture
def system(anvil: str):
    return system_module.LightChallenge.deploy(anvil)


def drain(indexer: ChainIndexer) -> None:
    while indexer.step() is not Step.IDLE:
        pass


def reference_args(system, contract: str, event: str, tx_hash: str, log_index: int) -> dict[str, Any]:
    receipt = system.client.w3.eth.get_transaction_receipt(tx_hash)
    [log] = [entry for entry in receipt["logs"] if entry["logIndex"] == log_index]
    decoded = system.contract(contract).events[event]().process_log(log)["args"]
    abi = {i["name"]: i["type"] for e in system.contract(contract).abi if e.get("name") == event
           for i in e["inputs"]}
    return {name: _avro_ready(abi[name], value) for name, value in decoded.items()}


def _avro_ready(abi_type: str, value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if abi_type == "address":
        return value.lower()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if avro_type(abi_type) == "string" else value
    return value


def test_every_event_type_from_real_transactions_arrives_decoded(system):
    first_block = system.client.block_number() + 1  # the deployment's own DispatcherSet events come before
    emitted = scenario.emit_every_event_type(system)
    assert scenario.missing_event_types(emitted) == []
    system.client.mine(12)
    sink = MemorySink()
    addresses = {role: system.addresses[role] for role in ROLES}
    indexer = ChainIndexer(
        chain_id=31337, source=ChainRpc(system.client.w3.provider.endpoint_uri), table=build_decoder_table(addresses),
        sink=sink, keyer=ChainKeyer(addresses["ChallengePay"]), window=ReorgWindow(64), ranges=AdaptiveRange(2000),
        confirmations=12,
    )
    drain(indexer)
    originals = [m for m in sink.events() if m.payload["rekeyed_from"] is None
                 and m.payload["block_number"] >= first_block]
    assert Counter((m.payload["contract"], m.payload["event"], m.payload["tx_hash"]) for m in originals) == \
        Counter((c, e, tx.lower()) for c, e, tx in emitted)
    for message in originals:
        payload = message.payload
        expected = reference_args(system, payload["contract"], payload["event"], payload["tx_hash"],
                                  payload["log_index"])
        assert payload["args"][1] == expected, (payload["contract"], payload["event"])
        assert payload["address"] == system.addresses[payload["contract"]].lower()
    by_event = {(m.payload["contract"], m.payload["event"]): m for m in originals}
    assert by_event[("ChallengePay", "Joined")].key == by_event[("ChallengePay", "Joined")].payload["args"][1]["id"]
    assert by_event[("Treasury", "ClaimedETH")].key == by_event[("Treasury", "ClaimedETH")].payload["args"][1][
        "bucketId"]
    request = by_event[("AIVMInferenceV2", "InferenceRequestedV2")]
    binding = by_event[("ChallengeTaskRegistry", "BindingRecorded")]
    assert request.key == f"task:{request.payload['args'][1]['taskId']}"
    copies = [m for m in sink.events() if m.payload["rekeyed_from"] == request.key]
    assert copies and all(m.key == binding.key for m in copies)


def test_real_events_round_trip_through_kafka(system, indexer_settings_for):
    first_block = system.client.block_number() + 1
    emitted = scenario.emit_every_event_type(system)
    system.client.mine(12)
    settings = indexer_settings_for(system.addresses)
    stop = threading.Event()
    runner = Background(lambda: run_indexer(settings, stop), stop.set)
    expected = Counter((c, e, tx.lower()) for c, e, tx in emitted)

    def arrived() -> Counter:
        return Counter((ev.payload["contract"], ev.payload["event"], ev.payload["tx_hash"])
                       for _k, ev in published(settings, CHAIN_EVENTS)
                       if ev.payload["rekeyed_from"] is None and ev.payload["block_number"] >= first_block)

    wait_for(lambda: arrived() == expected, what="every real event on Kafka")
    runner.stop()
    for _key, event in published(settings, CHAIN_EVENTS):
        payload = event.payload
        if payload["block_number"] >= first_block:
            assert payload["args"] == reference_args(system, payload["contract"], payload["event"],
                                                     payload["tx_hash"], payload["log_index"])


@pytest.fixture
def indexer_settings_for(kafka_bootstrap, anvil, tmp_path):
    import uuid

    from cli.settings import Settings

    def make(addresses: dict[str, str]):
        deployments = tmp_path / "deployments.json"
        deployments.write_text(json.dumps({"contracts": addresses}))
        settings = Settings.from_env(
            kafka_bootstrap=kafka_bootstrap, schema_registry_url="", topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
            rpc_url=anvil, chain_id=31337, deployments_file=str(deployments), chain_poll_seconds=0.05,
        )
        create_topics(settings)
        wait_for_leaders(settings, (CHAIN_BLOCKS, CHAIN_EVENTS))
        return settings

    return make
