"""ChainEventWriter against fastavro: byte-identical output for every union branch, and the payload read back."""

from __future__ import annotations

import random

import pytest

from eventlog.serde import EventSerde
from eventlog.topics import CHAIN_EVENTS
from indexers.chain.abi import avro_type, topic_avro_type
from indexers.chain.catalogue import pipeline_events
from indexers.chain.codec import ChainEventWriter, SchemaMismatch, avro_long, read_payload
from indexers.chain.messages import args_branch, chain_event
from indexers.chain.model import DecodedLog, OutMessage, RawLog

PRODUCER = "lc-chain-indexer"


def random_value(kind: str, rng: random.Random) -> object:
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "int":
        return rng.randint(-(2**31), 2**31 - 1)
    if kind == "long":
        return rng.choice([0, 1, -1, 63, 64, -65, 2**32 - 1, rng.randint(-(2**63), 2**63 - 1)])
    return rng.choice(["", "0x" + "ab" * 20, str(2**256 - 1), "Žluťoučký kůň 🐎", "a" * 300])


def payloads(rng: random.Random) -> list[tuple[str, int, dict]]:
    cases = []
    for role, abis in pipeline_events().items():
        for abi in abis:
            for _ in range(5):
                args = {p.name: random_value(topic_avro_type(p.type) if p.indexed else avro_type(p.type), rng)
                        for p in abi.inputs}
                payload = {
                    "chain_id": rng.choice([1, 31337, 2**40]), "contract": role, "address": "0x" + "cd" * 20,
                    "event": abi.name, "block_number": rng.randint(0, 2**40), "block_hash": "0x" + "12" * 32,
                    "block_timestamp": rng.randint(0, 2**34),
                    "tx_hash": rng.choice(["0x" + "34" * 32, "0x" + "35" * 32]),
                    "tx_index": rng.randint(0, 5000), "log_index": rng.randint(0, 5000),
                    "removed": rng.random() < 0.5, "challenge_id": rng.choice([None, "0", str(2**200)]),
                    "args": (args_branch(role, abi.name), args),
                    "rekeyed_from": rng.choice([None, "task:0x" + "56" * 32]),
                }
                event_id = f"{payload['chain_id']}:{payload['block_hash']}:{payload['tx_hash']}:{payload['log_index']}"
                cases.append((event_id, payload["block_timestamp"] * 1000, payload))
    return cases


@pytest.mark.parametrize("registry", ["", "mock://codec-test"])
def test_writer_output_equals_fastavro_for_every_branch(registry):
    serde = EventSerde(registry)
    writer = ChainEventWriter(serde.frame("lc.chain.events", "ChainEvent"), PRODUCER)
    cases = payloads(random.Random(7))
    assert {case[2]["args"][0] for case in cases} == set(writer._branches)  # every branch exercised
    for event_id, occurred_at, payload in cases:
        envelope = {"event_id": event_id, "occurred_at": occurred_at, "producer": PRODUCER}
        expected = serde.encode("lc.chain.events", "ChainEvent", envelope, payload)
        assert writer.encode(event_id, occurred_at, payload) == expected, payload["args"][0]
        assert read_payload(expected) == payload
        decoded = serde.decode(expected)
        assert (decoded.event_id, decoded.occurred_at, decoded.producer) == (event_id, occurred_at, PRODUCER)


def test_avro_long_is_zigzag_varint():
    assert [avro_long(n) for n in (0, -1, 1, -64, 64)] == [b"\x00", b"\x01", b"\x02", b"\x7f", b"\x80\x01"]
    assert avro_long(-(2**63)) == b"\xff" * 9 + b"\x01"


def test_writer_refuses_a_schema_it_was_not_written_for():
    version = EventSerde("").catalogue.latest("EvidenceSubmitted")
    with pytest.raises(SchemaMismatch):
        ChainEventWriter(b"", PRODUCER, version)


def test_a_message_carried_as_its_value_reads_back_its_payload():
    writer = ChainEventWriter(EventSerde("").frame(CHAIN_EVENTS, "ChainEvent"), PRODUCER)
    event_id, occurred_at, payload = payloads(random.Random(3))[0]
    value = writer.encode(event_id, occurred_at, payload)
    built = OutMessage(CHAIN_EVENTS, "2", "ChainEvent", event_id, occurred_at, payload, {"lc-event": "x"}, value)
    carried = OutMessage(CHAIN_EVENTS, "2", "ChainEvent", event_id, occurred_at, None, {"lc-event": "x"}, value)
    assert carried._payload is None
    assert carried == built and carried.payload == payload
    with pytest.raises(ValueError, match="neither"):
        OutMessage(CHAIN_EVENTS, "2", "ChainEvent", event_id, occurred_at)


def test_encoding_a_decoded_log_equals_encoding_the_message_built_from_it():
    serde = EventSerde("")
    writer = ChainEventWriter(serde.frame(CHAIN_EVENTS, "ChainEvent"), PRODUCER)
    for _event_id, _occurred_at, payload in payloads(random.Random(11)):
        if payload["removed"] or payload["rekeyed_from"]:
            continue  # a decoded log is published live and under its own key
        raw = RawLog(payload["address"], (), b"", payload["block_number"], payload["block_hash"], payload["tx_hash"],
                     payload["tx_index"], payload["log_index"])
        decoded = DecodedLog(payload["contract"], payload["event"], payload["args"][1], raw)
        message = chain_event(payload["chain_id"], decoded, "key", payload["challenge_id"], payload["block_timestamp"])
        event_id, value = writer.encode_log(payload["chain_id"], decoded, payload["challenge_id"],
                                            payload["block_timestamp"])
        assert event_id == message.event_id
        assert value == writer.encode(message.event_id, message.occurred_at, message.payload)
        assert value == serde.encode(CHAIN_EVENTS, "ChainEvent", {"event_id": event_id, "occurred_at": message.occurred_at,
                                                                   "producer": PRODUCER}, message.payload)
