"""The engine against a real anvil node: ranges, confirmations, keying, reorgs, RPC outages."""

from __future__ import annotations

from chainkit import MemorySink

from indexers.chain.engine import Step


def drain(indexer, limit: int = 1000) -> None:
    for _ in range(limit):
        if indexer.step() is Step.IDLE:
            return
    raise AssertionError("indexer never went idle")


def test_confirmed_logs_are_published_decoded_and_keyed(emitters, abis):
    node, addr = emitters.node, emitters.addresses
    user = "0x" + "ab" * 20
    node.emit(addr["ChallengePay"], abis["ChallengePay"]["Joined"], {"id": 7, "user": user, "amount": 10**18})
    sink = MemorySink()
    indexer = emitters.indexer(sink)
    drain(indexer)
    assert sink.events() == []  # not yet 12 deep
    node.mine(12)
    drain(indexer)
    [event] = sink.events()
    assert event.key == "7"
    assert event.payload["event"] == "Joined"
    assert event.payload["args"][1] == {"id": "7", "user": user, "amount": str(10**18)}
    assert event.payload["challenge_id"] == "7"
