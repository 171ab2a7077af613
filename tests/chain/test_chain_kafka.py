"""The indexer process against anvil and a real Kafka broker: transactions, read-back, restart."""

from __future__ import annotations

import threading

from chainkit import published
from helpers import Background, wait_for

from eventlog.topics import CHAIN_BLOCKS, CHAIN_EVENTS
from indexers.chain import run_indexer


def start(settings) -> tuple[Background, threading.Event]:
    stop = threading.Event()
    return Background(lambda: run_indexer(settings, stop), stop.set), stop


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
    wait_for(lambda: published(indexer_settings, CHAIN_BLOCKS)[-1][1].payload["number"] == head - 12,
             what="blocks published up to the confirmed head")
    runner.stop()

    events = [e for _k, e in published(indexer_settings, CHAIN_EVENTS)]
    assert len(events) == 5, "a restart re-published something"
    assert sorted(e.payload["args"]["id"] for e in events) == ["10", "11", "2", "3", "4"]
    assert {k for k, _ in live_events(indexer_settings).values()} == {"2", "3", "4", "10", "11"}
    numbers = [e.payload["number"] for _k, e in published(indexer_settings, CHAIN_BLOCKS)]
    assert numbers == sorted(set(numbers)), "blocks published twice or out of order"
