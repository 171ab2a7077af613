"""The chain indexer's start reads its checkpoint (lc.chain.checkpoints) and the messages of the
blocks still in its reorg window, not its whole history; what it restores equals what reading
everything back from offset 0 restores (`--restore-from-zero`), across bindings, re-keyed facts,
reorgs and restarts."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Producer
from kits.background import Background, wait_for
from kits.chain import comparable, emit_tx, published, restored_state

from eventlog.admission import StageHalted
from eventlog.topics import CHAIN_BLOCKS, CHAIN_EVENTS
from indexers.chain import run_indexer
from indexers.chain.checkpoint import read_checkpoint

USER = "0x" + "11" * 20


def run_until_caught_up(settings, node) -> None:
    stop = threading.Event()
    runner = Background(lambda: run_indexer(settings, stop), stop.set)
    head = node.head()
    try:
        wait_for(lambda: (published(settings, CHAIN_BLOCKS) or [("", None)])[-1][1] is not None
                 and published(settings, CHAIN_BLOCKS)[-1][1].payload["number"] == head - settings.confirmations,
                 timeout=120, what="the indexer to catch up")
    finally:
        runner.stop()


def live(settings) -> dict[str, tuple[str, dict]]:
    newest = {}
    for key, event in published(settings, CHAIN_EVENTS):
        newest[event.event_id] = (key, event.payload)
    return {eid: kp for eid, kp in newest.items() if not kp[1]["removed"]}


def emit_history(emitters, abis) -> None:
    """Old facts far below the window (rollback cap 64), an AIVM request bound later, one never bound,
    and recent events inside the window."""
    node, addr = emitters.node, emitters.addresses
    aivm, registry, joined = abis["AIVMInferenceV2"], abis["ChallengeTaskRegistry"], abis["ChallengePay"]["Joined"]
    for n, task in enumerate((bytes.fromhex("5a" * 32), bytes.fromhex("6b" * 32)), start=3):
        node.emit(addr["AIVMInferenceV2"], aivm["InferenceRequestedV2"], {
            "requestId": n, "requester": USER, "taskId": task, "model": "m", "promptHash": b"\x01" * 32,
            "promptId": b"\x02" * 32, "modelDigest": b"\x03" * 32, "detConfigHash": b"\x04" * 32})
    for block in range(250):
        node.emit(addr["ChallengePay"], joined, {"id": block, "user": USER, "amount": 5}, repeat=3)
        if block == 100:
            node.emit(addr["ChallengeTaskRegistry"], registry["BindingRecorded"], {
                "challengeId": 42, "subject": USER, "requestId": 3, "taskId": bytes.fromhex("5a" * 32),
                "modelDigest": b"\x03" * 32, "paramsHash": b"\x00" * 32, "benchmarkHash": b"\x00" * 32,
                "schemaVersion": 1})
    node.mine(12)


def test_a_start_from_the_checkpoint_restores_what_reading_everything_back_restores(emitters, abis, indexer_settings):
    settings = indexer_settings.replace(chain_max_block_range=7)
    emit_history(emitters, abis)
    run_until_caught_up(settings, emitters.node)

    from_checkpoint = restored_state(settings, emitters.addresses["ChallengePay"], from_zero=False)
    from_zero = restored_state(settings, emitters.addresses["ChallengePay"], from_zero=True)
    assert from_checkpoint.from_checkpoint and not from_zero.from_checkpoint
    assert comparable(from_checkpoint) == comparable(from_zero)
    assert not from_checkpoint.window.complete and from_checkpoint.keyer.bound_tasks == 1
    assert from_checkpoint.keyer.unbound_facts == 2  # both requests (the bound one is kept for a rebinding)
    # the keyer's facts and the window's messages were read (from the start of the batch that published
    # the oldest window block: the blocks of its range before it, 3 events each), not the history below
    total = len(published(settings, CHAIN_EVENTS))
    in_window = sum(len(entry.messages) for entry in from_checkpoint.window.entries)
    same_batch = (settings.chain_max_block_range - 1) * 3
    assert in_window <= from_checkpoint.events_read - 3 <= in_window + same_batch < total / 3
    assert from_zero.events_read == total


def test_reorgs_and_a_restart_from_zero_keep_the_checkpoint_exact(emitters, abis, indexer_settings):
    node, addr = emitters.node, emitters.addresses
    joined = abis["ChallengePay"]["Joined"]
    settings = indexer_settings.replace(chain_max_block_range=5)
    emit_history(emitters, abis)
    run_until_caught_up(settings, node)
    # orphan the last 20 blocks (the binding survives), with a replacement event
    node.call("anvil_reorg", [20, [[emit_tx(node, addr["ChallengePay"], joined,
                                            {"id": 999, "user": USER, "amount": 7}), 0]]])
    node.mine(12)
    run_until_caught_up(settings, node)
    from_checkpoint = restored_state(settings, addr["ChallengePay"], from_zero=False)
    assert comparable(from_checkpoint) == comparable(restored_state(settings, addr["ChallengePay"], from_zero=True))
    assert any(e.event_type == "BlockReverted" for _k, e in published(settings, CHAIN_BLOCKS))

    # a start with --restore-from-zero reads everything back and writes the checkpoint whole again
    before = read_checkpoint(settings, settings.chain_id)
    node.emit(addr["ChallengePay"], joined, {"id": 1000, "user": USER, "amount": 1})
    node.mine(12)
    run_until_caught_up(settings.replace(restore_from_zero=True), node)
    after = read_checkpoint(settings, settings.chain_id)
    assert set(after.facts) == set(before.facts) and after.window != before.window
    run_until_caught_up(settings, node)
    events = [event for _key, event in published(settings, CHAIN_EVENTS)]
    assert len({e.event_id for e in events if not e.payload["removed"]}) == len(
        [e for e in events if not e.payload["removed"]]), "a restart published an event twice"
    assert "999" in {p["args"].get("id") for _k, p in live(settings).values()}
    assert comparable(restored_state(settings, addr["ChallengePay"], from_zero=False)) == comparable(
        restored_state(settings, addr["ChallengePay"], from_zero=True))


def test_a_published_chain_fact_that_cannot_be_read_back_halts_the_start(emitters, abis, indexer_settings):
    """The indexer reads back what it published as every stage reads it (`eventlog.admission`): a message
    of a window block that no stage could read halts the start, from the checkpoint and from zero alike."""
    node, addr = emitters.node, emitters.addresses
    for n in range(5):
        node.emit(addr["ChallengePay"], abis["ChallengePay"]["Joined"], {"id": n, "user": USER, "amount": 5})
    node.mine(12)
    run_until_caught_up(indexer_settings, node)
    newest = restored_state(indexer_settings, addr["ChallengePay"], from_zero=False).window.entries[-1]

    delivered: list[int] = []
    producer = Producer({"bootstrap.servers": indexer_settings.kafka_bootstrap})
    producer.produce(indexer_settings.topic(CHAIN_EVENTS), value=b"not an event", key=b"1", partition=0,
                     headers={"lc-block-hash": newest.hash, "lc-block": str(newest.number)},
                     on_delivery=lambda err, msg: delivered.append(msg.offset()))
    producer.flush(30)
    for from_zero in (False, True):
        with pytest.raises(StageHalted, match=rf"^lc\.chain\.events\[0\]@{delivered[0]}: chain indexer: undecodable"):
            restored_state(indexer_settings, addr["ChallengePay"], from_zero=from_zero)
