"""The engine against a real anvil node: confirmations, keying, reorgs, RPC outages, range limits."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from kits.background import Background, wait_for
from kits.chain import MemorySink, RpcProxy, emit_tx

from indexers.chain.engine import Backoff, ChainIndexer, Step
from indexers.chain.reorg import ReorgTooDeep

USER = "0x" + "ab" * 20
TASK = "0x" + "5a" * 32


def drain(indexer: ChainIndexer, limit: int = 1000) -> list[Step]:
    steps = []
    for _ in range(limit):
        steps.append(indexer.step())
        if steps[-1] is Step.IDLE:
            return steps
    raise AssertionError("indexer never went idle")


# in-process (one thread, whole ranges) and as `lc run indexer` runs it (worker processes, ranges in chunks)
PREPARATION = pytest.mark.parametrize("workers,log_budget", [(0, None), (2, 1)], ids=["thread", "processes"])


def joined(abis, challenge: int) -> tuple:
    return abis["ChallengePay"]["Joined"], {"id": challenge, "user": USER, "amount": 10**18}


def test_confirmed_logs_are_published_decoded_and_keyed(emitters, abis):
    node, addr = emitters.node, emitters.addresses
    node.emit(addr["ChallengePay"], *joined(abis, 7))
    sink = MemorySink()
    indexer = emitters.indexer(sink)
    drain(indexer)
    assert sink.events() == []  # not yet 12 deep
    node.mine(11)
    drain(indexer)
    assert sink.events() == []
    node.mine(1)
    drain(indexer)
    [event] = sink.events()
    assert event.key == "7"
    assert event.payload["event"] == "Joined"
    assert event.payload["args"][1] == {"id": "7", "user": USER, "amount": str(10**18)}
    assert event.payload["challenge_id"] == "7"
    block = node.call("eth_getBlockByNumber", [hex(event.payload["block_number"]), False])
    assert event.payload["block_hash"] == block["hash"]
    assert event.payload["block_timestamp"] == int(block["timestamp"], 16)
    assert event.occurred_at == int(block["timestamp"], 16) * 1000
    # the log's block header and the range's closing header travel in the same batch
    [batch] = [b for b in sink.batches if event in b]
    confirmed = [m.payload["number"] for m in batch if m.event_type == "BlockConfirmed"]
    assert event.payload["block_number"] in confirmed and confirmed[-1] == node.head() - 12


@PREPARATION
def test_aivm_events_follow_their_binding_to_the_challenge(emitters, abis, workers, log_budget):
    node, addr = emitters.node, emitters.addresses
    aivm, registry = abis["AIVMInferenceV2"], abis["ChallengeTaskRegistry"]
    node.emit(addr["AIVMInferenceV2"], aivm["InferenceRequestedV2"], {
        "requestId": 3, "requester": USER, "taskId": bytes.fromhex(TASK[2:]), "model": "m",
        "promptHash": b"\x01" * 32, "promptId": b"\x02" * 32, "modelDigest": b"\x03" * 32,
        "detConfigHash": b"\x04" * 32})
    node.emit(addr["AIVMInferenceV2"], aivm["InferenceCommitted"], {
        "requestId": 3, "worker": USER, "commitment": b"\x05" * 32})
    node.emit(addr["ChallengeTaskRegistry"], registry["BindingRecorded"], {
        "challengeId": 42, "subject": USER, "requestId": 3, "taskId": bytes.fromhex(TASK[2:]),
        "modelDigest": b"\x03" * 32, "paramsHash": b"\x00" * 32, "benchmarkHash": b"\x00" * 32,
        "schemaVersion": 1})
    node.emit(addr["AIVMInferenceV2"], aivm["InferenceRevealed"], {
        "requestId": 3, "worker": USER, "responseHash": b"\x06" * 32, "response": '{"challengeId":"42"}'})
    node.mine(12)
    sink = MemorySink()
    indexer = emitters.indexer(sink, workers=workers, log_budget=log_budget)
    drain(indexer)
    indexer.close()
    keys = [(m.payload["event"], m.key, m.payload["challenge_id"], m.payload["rekeyed_from"]) for m in sink.events()]
    assert keys == [
        ("InferenceRequestedV2", f"task:{TASK}", None, None), ("InferenceCommitted", f"task:{TASK}", None, None),
        ("InferenceRequestedV2", "42", "42", f"task:{TASK}"), ("InferenceCommitted", "42", "42", f"task:{TASK}"),
        ("BindingRecorded", "42", "42", None), ("InferenceRevealed", "42", "42", None)]
    # per challenge: every fact of challenge 42, in chain order, in its partition
    per_challenge = [m.payload["event"] for m in sink.events() if m.key == "42"]
    assert per_challenge == ["InferenceRequestedV2", "InferenceCommitted", "BindingRecorded", "InferenceRevealed"]


def test_reorg_shallower_than_the_confirmations_never_publishes_the_orphaned_log(emitters, abis):
    node, addr = emitters.node, emitters.addresses
    node.mine(20)
    node.emit(addr["ChallengePay"], *joined(abis, 7))
    node.mine(2)
    sink = MemorySink()
    indexer = emitters.indexer(sink)
    drain(indexer)
    node.call("anvil_reorg", [5, [[emit_tx(node, addr["ChallengePay"], *joined(abis, 8)), 2]]])
    node.mine(12)
    drain(indexer)
    assert [m.key for m in sink.events()] == ["8"]
    assert not any(m.event_type == "BlockReverted" for m in sink.messages)


@PREPARATION
@pytest.mark.parametrize("depth", [14, 40])
def test_reorg_deeper_than_the_confirmations_retracts_then_publishes_the_canonical_logs(emitters, abis, depth,
                                                                                        workers, log_budget):
    node, addr = emitters.node, emitters.addresses
    node.emit(addr["ChallengePay"], *joined(abis, 3))  # stays canonical: the walk back stops at its block
    node.mine(50)
    node.emit(addr["ChallengePay"], *joined(abis, 7))
    node.emit(addr["ChallengeTaskRegistry"], abis["ChallengeTaskRegistry"]["BindingCleared"],
              {"challengeId": 7, "subject": USER})
    node.mine(depth - 2)
    sink = MemorySink()
    indexer = emitters.indexer(sink, confirmations=12, rollback_cap=64, workers=workers, log_budget=log_budget)
    drain(indexer)
    orphaned = sink.events()[1:]
    assert [m.key for m in orphaned] == ["7", "7"]
    orphaned_blocks = {m.payload["block_number"]: m.payload["block_hash"] for m in orphaned}

    node.call("anvil_reorg", [depth, [[emit_tx(node, addr["ChallengePay"], *joined(abis, 9)), 1]]])
    steps = drain(indexer)
    assert Step.ROLLED_BACK in steps
    node.mine(12)
    drain(indexer)

    retractions = sink.events(removed=True)
    assert [(m.event_id, m.key) for m in retractions] == [(m.event_id, m.key) for m in reversed(orphaned)]
    reverted = [m.payload for m in sink.messages if m.event_type == "BlockReverted"]
    assert {p["hash"] for p in reverted} >= set(orphaned_blocks.values())
    # the walk back stops at the newest published block still canonical (at or after event 3's block)
    [(ancestor, ancestor_hash)] = {(p["ancestor_number"], p["ancestor_hash"]) for p in reverted}
    assert sink.events()[0].payload["block_number"] <= ancestor < min(orphaned_blocks)
    assert node.call("eth_getBlockByNumber", [hex(ancestor), False])["hash"] == ancestor_hash
    live = sink.live_events()
    assert [m.key for m in live.values()] == ["3", "9"]
    canonical = list(live.values())[-1]
    assert node.call("eth_getBlockByNumber", [hex(canonical.payload["block_number"]), False])["hash"] == \
        canonical.payload["block_hash"]
    # one batch, newest block first: its retractions, then its BlockReverted; no canonical log in it
    [revert_batch] = [b for b in sink.batches if any(m.event_type == "BlockReverted" for m in b)]
    order = [(m.event_type, m.payload.get("removed"), m.payload.get("block_number", m.payload.get("number")))
             for m in revert_batch]
    newest, oldest = max(orphaned_blocks), min(orphaned_blocks)
    assert [o for o in order if o[2] in orphaned_blocks] == [
        ("ChainEvent", True, newest), ("BlockReverted", None, newest),
        ("ChainEvent", True, oldest), ("BlockReverted", None, oldest)]
    assert [o[2] for o in order] == sorted((o[2] for o in order), reverse=True)
    indexer.close()


def test_reorg_deeper_than_the_rollback_cap_halts(emitters, abis):
    node, addr = emitters.node, emitters.addresses
    node.emit(addr["ChallengePay"], *joined(abis, 7))
    node.mine(60)
    sink = MemorySink()
    indexer = emitters.indexer(sink, confirmations=12, rollback_cap=16, max_range=4)
    drain(indexer)
    published = len(sink.messages)
    node.call("anvil_reorg", [40, []])
    with pytest.raises(ReorgTooDeep):
        drain(indexer)
    assert len(sink.messages) == published  # nothing retracted


def test_orphaned_binding_stops_keying_aivm_events(emitters, abis):
    node, addr = emitters.node, emitters.addresses
    registry, aivm = abis["ChallengeTaskRegistry"], abis["AIVMInferenceV2"]
    bind = {"challengeId": 42, "subject": USER, "requestId": 3, "taskId": bytes.fromhex(TASK[2:]),
            "modelDigest": b"\x03" * 32, "paramsHash": b"\x00" * 32, "benchmarkHash": b"\x00" * 32,
            "schemaVersion": 1}
    node.mine(5)
    node.emit(addr["ChallengeTaskRegistry"], registry["BindingRecorded"], bind)
    node.mine(14)
    sink = MemorySink()
    indexer = emitters.indexer(sink)
    drain(indexer)
    assert indexer.keyer.bound_tasks == 1
    attest = {"taskId": bytes.fromhex(TASK[2:]), "validator": USER, "count": 1, "resultHash": b"\x07" * 32,
              "transcriptHash": b"\x00" * 32, "slot": 0}
    node.call("anvil_reorg", [15, [[emit_tx(node, addr["AIVMInferenceV2"], aivm["PoIAttested"], attest), 3]]])
    node.mine(12)
    drain(indexer)
    assert indexer.keyer.bound_tasks == 0
    assert [m.key for m in sink.live_events().values()] == [f"task:{TASK}"]
    # the binding is recorded again: the attestation follows it to the challenge
    node.emit(addr["ChallengeTaskRegistry"], registry["BindingRecorded"], bind)
    node.mine(12)
    drain(indexer)
    live = [(m.payload["event"], m.key, m.payload["rekeyed_from"]) for m in sink.live_events().values()]
    assert live == [("PoIAttested", f"task:{TASK}", None), ("PoIAttested", "42", f"task:{TASK}"),
                    ("BindingRecorded", "42", None)]


def test_snapshot_revert_retracts_everything_after_the_snapshot(emitters, abis):
    node, addr = emitters.node, emitters.addresses
    node.mine(3)
    snapshot = node.snapshot()
    for challenge in (7, 8, 9):
        node.emit(addr["ChallengePay"], *joined(abis, challenge))
    node.mine(20)
    sink = MemorySink()
    indexer = emitters.indexer(sink)
    drain(indexer)
    assert len(sink.live_events()) == 3
    node.revert(snapshot)  # the node's chain is now shorter than what was published
    node.mine(30)
    drain(indexer)
    assert sink.live_events() == {}
    assert len(sink.events(removed=True)) == 3


def test_rpc_outage_is_waited_out_and_nothing_is_skipped(emitters, abis):
    node, addr = emitters.node, emitters.addresses
    proxy = RpcProxy(emitters.url)
    sink = MemorySink()
    indexer = emitters.indexer(sink, max_range=8, url=proxy.url, timeout=5)
    stop = threading.Event()
    runner = Background(lambda: indexer.run(stop, poll_seconds=0.02, backoff=Backoff(0.05, 0.2)), stop.set)
    for challenge in range(2, 12):
        node.emit(addr["ChallengePay"], *joined(abis, challenge))
    node.mine(12)
    wait_for(lambda: len(sink.events()) == 10, what="first 10 events")
    proxy.stop()
    requests_before = proxy.requests
    for challenge in range(12, 40):
        node.emit(addr["ChallengePay"], *joined(abis, challenge))
        node.mine(1)
    node.mine(12)
    assert proxy.requests == requests_before
    proxy.start()
    wait_for(lambda: len(sink.events()) == 38, what="all 38 events after the outage")
    runner.stop()
    assert sorted(int(m.key) for m in sink.events()) == list(range(2, 40))
    numbers = [m.payload["number"] for m in sink.messages if m.event_type == "BlockConfirmed"]
    assert numbers == sorted(set(numbers))


def test_node_range_limits_shrink_the_range_and_skip_nothing(emitters, abis):
    node, addr = emitters.node, emitters.addresses
    for challenge in range(2, 30):
        node.emit(addr["ChallengePay"], *joined(abis, challenge))
    node.mine(12)
    proxy = RpcProxy(emitters.url)
    proxy.max_log_range = 5
    sink = MemorySink()
    indexer = emitters.indexer(sink, max_range=64, url=proxy.url)
    stop = threading.Event()
    runner = Background(lambda: indexer.run(stop, poll_seconds=0.02, backoff=Backoff(0.05, 0.2)), stop.set)
    wait_for(lambda: len(sink.events()) == 28, what="all events through a range-limited node")
    runner.stop()
    assert proxy.refused_ranges >= 1
    assert indexer.ranges.size <= 8  # shrunk from 64; it probes one doubling above the node's limit when calm
    assert sorted(int(m.key) for m in sink.events()) == list(range(2, 30))


def test_a_range_with_more_log_blocks_than_one_header_batch(emitters, abis):
    node, addr = emitters.node, emitters.addresses
    for challenge in range(2, 252):  # one block each: 250 headers, fetched in batches of 100
        node.emit(addr["ChallengePay"], *joined(abis, challenge))
    node.mine(12)
    sink = MemorySink()
    drain(emitters.indexer(sink, max_range=1000))
    assert len(sink.batches) == 1
    assert sorted(int(m.key) for m in sink.events()) == list(range(2, 252))
    confirmed = [m.payload["number"] for m in sink.messages if m.event_type == "BlockConfirmed"]
    assert len(confirmed) == 250 and confirmed[-1] == node.head() - 12  # every log block, the last closes


def test_a_killed_range_worker_is_replaced_and_nothing_is_skipped(emitters, abis):
    node, addr = emitters.node, emitters.addresses
    for challenge in range(2, 62):
        node.emit(addr["ChallengePay"], *joined(abis, challenge))
    node.mine(12)
    sink = MemorySink()
    indexer = emitters.indexer(sink, workers=2, log_budget=1)
    indexer.workers.warm_up()
    first_pool = indexer.workers.pids()
    os.kill(first_pool[0], signal.SIGKILL)  # before any range: the broken pool is replaced on submit
    stop = threading.Event()
    runner = Background(lambda: indexer.run(stop, poll_seconds=0.02, backoff=Backoff(0.05, 0.2)), stop.set)
    wait_for(lambda: len(sink.events()) >= 20, what="part of the history")
    second_pool = indexer.workers.pids()
    assert second_pool and not set(second_pool) & set(first_pool)
    os.kill(second_pool[0], signal.SIGKILL)  # mid-run: its range fails and is prepared again
    wait_for(lambda: len(sink.events()) == 60, what="every event after the worker deaths")
    runner.stop()
    assert sorted(int(m.key) for m in sink.events()) == list(range(2, 62))
    numbers = [m.payload["number"] for m in sink.messages if m.event_type == "BlockConfirmed"]
    assert numbers == sorted(set(numbers)), "a block published twice or out of order"
    wait_for(lambda: indexer.workers.pids() == [], what="the pool closed by run() on its way out")
