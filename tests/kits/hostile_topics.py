"""Hostile messages for every topic, good events to put around them, and raw access to the broker
(no tests here).

Each topic gets the same six hostile messages (`hostile`): garbage bytes, a truncated event, a valid
event of a type the topic does not carry, a valid event without a key, a message without a value,
and a 1,040,000-byte value (a valid event followed by random bytes, so neither the event's decoder
nor compression can make it small). `good(topic, n)` is a valid event of the topic that every stage
consuming it accepts; events n = 1, 2, ... are distinct (challenge n, block n).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from cli.settings import Settings
from domain.registration import validate_registration
from eventlog.producer import EventProducer
from eventlog.serde import EventSerde
from eventlog.topics import (
    ACCOUNTS,
    CHAIN_BLOCKS,
    CHAIN_EVENTS,
    CHALLENGES_REGISTERED,
    DLQ,
    EVIDENCE,
    JOBS,
    LARGEST_MESSAGE_BYTES,
    VERDICTS,
)
from indexers.providers.accounts import linked_account_payload

OVERSIZED_BYTES = 1_040_000
SUBJECT = "0x" + "a1" * 20
CHAIN_ID = 31337
T0 = 1_700_000_000


@dataclass(frozen=True)
class Good:
    key: str
    event_type: str
    payload: dict[str, Any]
    event_id: str
    occurred_at: int


@dataclass(frozen=True)
class Hostile:
    name: str
    key: bytes | None
    value: bytes | None
    reason: str  # what the refusal (dead letter reason or halt message) says


def _registration(cid: int) -> dict[str, Any]:
    registration = validate_registration({
        "id": cid, "subject": SUBJECT, "model_id": "fitness.steps@1", "title": f"challenge {cid}",
        "params": {"rule": {"challengeType": "steps", "period": {"start": "2026-01-01T00:00:00Z",
                                                                  "end": "2026-01-08T00:00:00Z", "timezone": "UTC"},
                            "conditions": [{"metric": "steps", "op": ">=", "value": 1000}]}},
        "timeline": {"startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-08T00:00:00Z",
                     "proofDeadline": "2026-01-09T00:00:00Z"},
    })
    return registration.to_payload(source="cli", registered_by=None)


def good(topic: str, n: int) -> Good:
    """A valid event n of the topic (challenge n, block n, account n)."""
    at = (T0 + n) * 1000
    if topic == EVIDENCE:
        records = [{"dateTime": "2026-01-02", "value": 1000 * n}]
        return Good(str(n), "EvidenceSubmitted", {
            "challenge_id": n, "subject": SUBJECT, "provider": "fitbit", "records_json": json.dumps(records),
            "evidence_hash": f"0x{n:064x}", "raw_ref": None}, f"hostile:evidence:{n}", at)
    if topic == CHALLENGES_REGISTERED:
        return Good(str(n), "ChallengeRegistered", _registration(n), f"hostile:registration:{n}", at)
    if topic == VERDICTS:
        return Good(str(n), "VerdictIssued", {
            "challenge_id": n, "subject": SUBJECT, "pass": True, "score": 1.0, "reasons": [], "metadata_json": None,
            "evaluator": "fitness", "evidence_hash": f"0x{n:064x}", "evidence_at": at,
            "trigger_event_id": f"hostile:evidence:{n}"}, f"hostile:verdict:{n}", at)
    if topic == JOBS:
        return Good(str(n), "JobQueued", {"job_id": f"job:{n}", "challenge_id": n, "mode": "threshold",
                                          "participants": [SUBJECT]}, f"hostile:job:{n}", at)
    if topic == ACCOUNTS:
        subject = "0x" + f"{n:040x}"
        return Good(f"{subject}:strava", "LinkedAccount",
                    linked_account_payload(None, subject, "strava", f"athlete-{n}", None), f"hostile:account:{n}", at)
    if topic == CHAIN_EVENTS:
        return Good(str(n), "ChainEvent", {
            "chain_id": CHAIN_ID, "contract": "ChallengePay", "address": "0x" + "c1" * 20, "event": "ChallengeCreated",
            "block_number": n, "block_hash": f"0x{n:064x}", "block_timestamp": T0 + n, "tx_hash": f"0x{n:064x}",
            "tx_index": 0, "log_index": 0, "removed": False, "challenge_id": str(n),
            "args": ("lc.chain.ChallengePay.ChallengeCreated", {
                "id": str(n), "creator": SUBJECT, "kind": 1, "currency": 0, "token": "0x" + "00" * 20,
                "startTs": str(T0 + 86_400), "externalId": "0x" + "00" * 32})}, f"{CHAIN_ID}:hostile:{n}", at)
    if topic == CHAIN_BLOCKS:
        return Good(str(CHAIN_ID), "BlockConfirmed", {
            "chain_id": CHAIN_ID, "number": n, "hash": f"0x{n:064x}", "parent_hash": f"0x{n - 1:064x}",
            "timestamp": T0 + n, "log_count": 0}, f"{CHAIN_ID}:block:{n}", at)
    raise ValueError(f"no good event for {topic}")


def encode(settings: Settings, topic: str, event: Good) -> bytes:
    envelope = {"event_id": event.event_id, "occurred_at": event.occurred_at, "producer": "hostile-test"}
    return EventSerde(settings.schema_registry_url).encode(settings.topic(topic), event.event_type, envelope,
                                                         event.payload)


def hostile(settings: Settings, topic: str) -> list[Hostile]:
    """The six hostile messages for `topic` (valid parts built from event 99)."""
    valid_event = good(topic, 99)
    valid = encode(settings, topic, valid_event)
    other = good(VERDICTS if topic == EVIDENCE else EVIDENCE, 99)
    key = valid_event.key.encode()
    return [
        Hostile("garbage", key, b"definitely not avro", "undecodable: not an Avro event"),
        Hostile("truncated", key, valid[: len(valid) // 2], "undecodable: corrupt"),
        Hostile("wrong type", key, encode(settings, topic, other), f"event type {other.event_type} does not belong on"),
        Hostile("null key", None, valid, "no key"),
        Hostile("null value", key, None, "undecodable: empty message value"),
        Hostile("oversized", key, valid + os.urandom(OVERSIZED_BYTES - len(valid)), "bytes after the"),
    ]


class Broker:
    """Raw produce (any key and value) and offset reading for one test's topics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = Producer({"bootstrap.servers": settings.kafka_bootstrap,
                                  "message.max.bytes": LARGEST_MESSAGE_BYTES + 64 * 1024})
        self.events = EventProducer(settings, "hostile-test")

    def publish(self, topic: str, event: Good) -> None:
        self.events.publish(topic, event.key, event.event_type, event.payload, event_id=event.event_id,
                            occurred_at=event.occurred_at)
        self.events.flush()

    def send(self, topic: str, message: Hostile) -> int:
        """Produce the raw message to partition 0 and return its offset; raises the broker's refusal
        (a compacted topic takes no message without a key)."""
        outcome: list[tuple[str | None, int]] = []
        self.producer.produce(
            self.settings.topic(topic), value=message.value, key=message.key, partition=0,
            on_delivery=lambda err, msg: outcome.append((err.str() if err else None, msg.offset())))
        self.producer.flush(30)
        [(error, offset)] = outcome
        if error is not None:
            raise RuntimeError(error)
        return offset

    def end_offset(self, topic: str, partition: int = 0) -> int:
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": "hostile-ends"})
        try:
            return int(consumer.get_watermark_offsets(TopicPartition(self.settings.topic(topic), partition),
                                                      timeout=10)[1])
        finally:
            consumer.close()

    def committed(self, group: str, topic: str, partition: int = 0) -> int:
        """The group's committed offset (negative when nothing is committed)."""
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap,
                             "group.id": f"{self.settings.topic_prefix}{group}"})
        try:
            [tp] = consumer.committed([TopicPartition(self.settings.topic(topic), partition)], timeout=10)
            return int(tp.offset)
        finally:
            consumer.close()

    def close(self) -> None:
        self.events.close()


def dead_letters(settings: Settings) -> list[tuple[int, dict[str, Any]]]:
    """(encoded size, payload) of every dead letter so far."""
    from kits.processors import read_all

    return [(len(r.raw), r.event.payload) for r in read_all(settings, DLQ)]
