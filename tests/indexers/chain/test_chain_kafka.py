"""The indexer process against anvil and a real Kafka broker: transactions, read-back, restart."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading

import pytest
from confluent_kafka import Consumer, TopicPartition
from kits.background import Background, wait_for
from kits.chain import comparable, emit_tx, published, restored_state

from devstack.process import is_alive, process_table
from eventlog.config import PROJECT_ROOT, env_name
from eventlog.topics import CHAIN_BLOCKS, CHAIN_EVENTS
from indexers.chain import AlreadySeeded, run_indexer, seed
from indexers.chain.reorg import ReorgTooDeep


def start(settings) -> tuple[Background, threading.Event]:
    stop = threading.Event()
    return Background(lambda: run_indexer(settings, stop), stop.set), stop


def last_block(settings) -> int:
    blocks = published(settings, CHAIN_BLOCKS)
    return blocks[-1][1].payload["number"] if blocks else -1


def live_events(settings) -> dict[str, tuple[str, dict]]:
    newest: dict[str, tuple[str, dict]] = {}
    for key, event in published(settings, CHAIN_EVENTS):
        newest[event.event_id] = (key, event.payload)
    return {eid: kp for eid, kp in newest.items() if not kp[1]["removed"]}


def test_publishes_confirmed_events_and_resumes_after_restart(emitters, abis, indexer_settings):
    node, addr = emitters.node, emitters.addresses
    joined = abis["ChallengePay"]["Joined"]
    node.emit(addr["ChallengePay"], joined, {"id": 2, "user": "0x" + "11" * 20, "amount": 5}, repeat=3)
    node.mine(12)
    runner, _ = start(indexer_settings)
    wait_for(lambda: len(live_events(indexer_settings)) == 3, what="3 Joined events on Kafka")
    runner.stop()

    node.emit(addr["ChallengePay"], joined, {"id": 10, "user": "0x" + "22" * 20, "amount": 6}, repeat=2)
    node.mine(12)
    runner, _ = start(indexer_settings)
    wait_for(lambda: len(live_events(indexer_settings)) == 5, what="5 Joined events on Kafka")
    head = node.head()
    wait_for(lambda: last_block(indexer_settings) == head - 12,
             what="blocks published up to the confirmed head")
    runner.stop()

    events = [e for _k, e in published(indexer_settings, CHAIN_EVENTS)]
    assert len(events) == 5, "a restart re-published something"
    assert sorted(e.payload["args"]["id"] for e in events) == ["10", "11", "2", "3", "4"]
    assert {k for k, _ in live_events(indexer_settings).values()} == {"2", "3", "4", "10", "11"}
    numbers = [e.payload["number"] for _k, e in published(indexer_settings, CHAIN_BLOCKS)]
    assert numbers == sorted(set(numbers)), "blocks published twice or out of order"


def process_env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    for field in dataclasses.fields(settings):
        env[env_name(field.name)] = str(getattr(settings, field.name))
    return env


def spawn_indexer(settings) -> subprocess.Popen:
    code = ("import logging, threading; logging.basicConfig(level=logging.INFO);"
            "from cli.settings import Settings; from indexers.chain import run_indexer;"
            "run_indexer(Settings.from_env(), threading.Event())")
    return subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=process_env(settings),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def children(pid: int) -> list[int]:
    return [child for child, info in process_table().items() if info.parent == pid]


def end_offsets(settings, topic: str) -> int:
    """Sum of the partitions' high watermarks: cheap progress signal (counts markers and aborted writes too)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "lc-test-offsets"})
    try:
        physical = settings.topic(topic)
        partitions = consumer.list_topics(physical, timeout=10).topics[physical].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(physical, p), timeout=10)[1] for p in partitions)
    finally:
        consumer.close()


@pytest.mark.slow
def test_sigkill_mid_range_and_restart_leaves_no_gap_and_no_duplicate(emitters, abis, indexer_settings):
    node, addr = emitters.node, emitters.addresses
    joined = abis["ChallengePay"]["Joined"]
    blocks, per_block = 300, 40
    for block in range(blocks):
        node.emit(addr["ChallengePay"], joined, {"id": 1000 * block, "user": "0x" + "11" * 20, "amount": 5},
                  repeat=per_block)
    node.mine(12)
    total = blocks * per_block
    settings = indexer_settings.replace(chain_max_block_range=1)
    process = spawn_indexer(settings)
    try:
        for _kill in range(3):
            at_least = end_offsets(settings, CHAIN_EVENTS) + 1500
            wait_for(lambda at_least=at_least: end_offsets(settings, CHAIN_EVENTS) > at_least,
                     what="the indexer to publish part of the history")
            workers = children(process.pid)
            assert len(workers) >= settings.chain_workers, "the indexer runs its range worker processes"
            process.send_signal(signal.SIGKILL)
            process.wait()
            assert len(published(settings, CHAIN_EVENTS)) < total, "finished before it could be killed"
            wait_for(lambda workers=workers: not any(map(is_alive, workers)),
                     what="the killed indexer's range workers to exit")
            # the checkpoint committed with the last batch is exactly what was published
            from_checkpoint = restored_state(settings, addr["ChallengePay"], from_zero=False)
            assert from_checkpoint.from_checkpoint
            assert comparable(from_checkpoint) == comparable(
                restored_state(settings, addr["ChallengePay"], from_zero=True))
            process = spawn_indexer(settings)
        wait_for(lambda: len(published(settings, CHAIN_EVENTS)) >= total, timeout=120,
                 what="every event after the restarts")
        head = node.head()
        wait_for(lambda: last_block(settings) == head - 12,
                 what="the closing block of the last range")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    events = [event for _key, event in published(settings, CHAIN_EVENTS)]
    ids = [event.event_id for event in events]
    assert len(ids) == len(set(ids)) == total, "duplicate or missing events after SIGKILL"
    assert sorted(int(e.payload["args"]["id"]) for e in events) == sorted(
        1000 * block + i for block in range(blocks) for i in range(per_block))
    numbers = [event.payload["number"] for _key, event in published(settings, CHAIN_BLOCKS)]
    assert numbers == sorted(set(numbers)), "a block published twice"


def test_restart_after_a_deep_reorg_retracts_what_the_previous_run_published(emitters, abis, indexer_settings):
    node, addr = emitters.node, emitters.addresses
    joined = abis["ChallengePay"]["Joined"]
    node.emit(addr["ChallengePay"], joined, {"id": 2, "user": "0x" + "11" * 20, "amount": 5})
    node.mine(30)
    node.emit(addr["ChallengePay"], joined, {"id": 3, "user": "0x" + "11" * 20, "amount": 5}, repeat=2)
    node.mine(14)
    runner, _ = start(indexer_settings)
    wait_for(lambda: len(live_events(indexer_settings)) == 3, what="3 events")
    runner.stop()
    node.call("anvil_reorg", [20, [[emit_tx(node, addr["ChallengePay"], joined,
                                            {"id": 9, "user": "0x" + "22" * 20, "amount": 7}), 0]]])
    node.mine(12)
    runner, _ = start(indexer_settings)
    wait_for(lambda: sorted(k for k, _ in live_events(indexer_settings).values()) == ["2", "9"],
             what="the orphaned events retracted and the canonical one published")
    runner.stop()
    removed = [(k, e) for k, e in published(indexer_settings, CHAIN_EVENTS) if e.payload["removed"]]
    assert sorted(k for k, _ in removed) == ["3", "4"]
    reverted = [e for _k, e in published(indexer_settings, CHAIN_BLOCKS) if e.event_type == "BlockReverted"]
    assert reverted and all(e.payload["ancestor_number"] < 40 for e in reverted)


def test_seed_starts_a_fresh_deployment_behind_the_head(emitters, abis, indexer_settings):
    node, addr = emitters.node, emitters.addresses
    joined = abis["ChallengePay"]["Joined"]
    node.emit(addr["ChallengePay"], joined, {"id": 2, "user": "0x" + "11" * 20, "amount": 5})
    node.mine(50)
    node.emit(addr["ChallengePay"], joined, {"id": 3, "user": "0x" + "11" * 20, "amount": 5})
    node.mine(12)
    result = seed(indexer_settings, lookback=30)
    assert result.first_indexed_block == node.head() - 30
    with pytest.raises(AlreadySeeded):
        seed(indexer_settings, lookback=30)
    runner, _ = start(indexer_settings)
    wait_for(lambda: last_block(indexer_settings) == node.head() - 12, what="caught up")
    runner.stop()
    assert [k for k, _ in live_events(indexer_settings).values()] == ["3"]


def test_rekeying_and_its_retraction_survive_restarts(emitters, abis, indexer_settings):
    node, addr = emitters.node, emitters.addresses
    aivm, registry = abis["AIVMInferenceV2"], abis["ChallengeTaskRegistry"]
    task = bytes.fromhex("5a" * 32)
    node.emit(addr["AIVMInferenceV2"], aivm["InferenceRequestedV2"], {
        "requestId": 3, "requester": "0x" + "11" * 20, "taskId": task, "model": "m", "promptHash": b"\x01" * 32,
        "promptId": b"\x02" * 32, "modelDigest": b"\x03" * 32, "detConfigHash": b"\x04" * 32})
    node.mine(20)
    runner, _ = start(indexer_settings)
    wait_for(lambda: len(live_events(indexer_settings)) == 1, what="the request, keyed by task")
    runner.stop()

    node.emit(addr["ChallengeTaskRegistry"], registry["BindingRecorded"], {
        "challengeId": 42, "subject": "0x" + "11" * 20, "requestId": 3, "taskId": task,
        "modelDigest": b"\x03" * 32, "paramsHash": b"\x00" * 32, "benchmarkHash": b"\x00" * 32, "schemaVersion": 1})
    node.mine(14)
    runner, _ = start(indexer_settings)
    wait_for(lambda: len(live_events(indexer_settings)) == 3, what="the binding and the re-keyed request")
    runner.stop()
    by_event = {(p["event"], k): p for k, p in live_events(indexer_settings).values()}
    assert by_event[("InferenceRequestedV2", "42")]["rekeyed_from"] == "task:0x" + "5a" * 32

    node.call("anvil_reorg", [16, []])  # orphans the binding's block, keeps the request's
    node.mine(12)
    runner, _ = start(indexer_settings)
    wait_for(lambda: len(live_events(indexer_settings)) == 1, what="the binding and its copy retracted")
    runner.stop()
    [(key, payload)] = live_events(indexer_settings).values()
    assert (key, payload["event"]) == ("task:0x" + "5a" * 32, "InferenceRequestedV2")
    removed = sorted((k, e.payload["event"]) for k, e in published(indexer_settings, CHAIN_EVENTS)
                     if e.payload["removed"])
    assert removed == [("42", "BindingRecorded"), ("42", "InferenceRequestedV2")]


def test_a_reorg_deeper_than_the_cap_halts_the_process_without_retracting(emitters, abis, indexer_settings):
    node, addr = emitters.node, emitters.addresses
    joined = abis["ChallengePay"]["Joined"]
    node.emit(addr["ChallengePay"], joined, {"id": 2, "user": "0x" + "11" * 20, "amount": 5})
    node.mine(100)
    settings = indexer_settings.replace(chain_rollback_cap=20, chain_max_block_range=5)
    runner, _ = start(settings)
    wait_for(lambda: last_block(settings) == node.head() - 12, what="caught up")
    runner.stop()
    node.call("anvil_reorg", [90, []])
    node.mine(1)
    with pytest.raises(ReorgTooDeep):
        run_indexer(settings, threading.Event())  # returns only by raising: the halt
    assert not any(e.event_type == "BlockReverted" for _k, e in published(settings, CHAIN_BLOCKS))
    assert not any(e.payload["removed"] for _k, e in published(settings, CHAIN_EVENTS))
