"""Building inputs and reading outputs of the stream processors in tests (no tests here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from cli.settings import Settings
from eventlog.config import PROJECT_ROOT, env_name
from eventlog.consumer import Received
from eventlog.processing.restore import reader
from eventlog.producer import EventProducer
from eventlog.serde import EventSerde
from eventlog.topics import CHAIN_BLOCKS, CHAIN_EVENTS, CHALLENGES_REGISTERED, EVIDENCE

T0 = 1_740_787_200  # 2025-03-01T00:00:00Z
TIMELINE = {"startsAt": T0, "endsAt": T0 + 30 * 86_400, "proofDeadline": T0 + 40 * 86_400}
STEPS_RULES = {"type": "fitness", "metric": "steps", "threshold": 0, "period": "total"}


def steps(value: float) -> list[dict[str, Any]]:
    return [{"dateTime": "2025-03-02", "value": value}]


def publish_evidence(producer: EventProducer, challenge_id: int, subject: str, records: list[Any], *,
                     provider: str = "fitbit", at_ms: int, event_id: str | None = None) -> str:
    event_id = event_id or f"ev:{challenge_id}:{subject}:{provider}:{at_ms}"
    records_json = json.dumps(records, separators=(",", ":"))
    producer.publish(EVIDENCE, str(challenge_id), "EvidenceSubmitted",
                     {"challenge_id": challenge_id, "subject": subject, "provider": provider,
                      "records_json": records_json, "evidence_hash": f"0x{abs(hash(records_json)):064x}"[:66],
                      "raw_ref": None}, event_id=event_id, occurred_at=at_ms)
    return event_id


def publish_registration(producer: EventProducer, challenge_id: int, params: dict[str, Any], *,
                         timeline: dict[str, Any] | None = None, params_json: str | None = None,
                         at_ms: int = T0 * 1000) -> str:
    event_id = f"reg:{challenge_id}:{at_ms}:{uuid.uuid4().hex[:6]}"
    producer.publish(CHALLENGES_REGISTERED, str(challenge_id), "ChallengeRegistered", {
        "challenge_id": challenge_id, "subject": "0x" + "c0" * 20, "model_id": "fitness.steps@1",
        "params_json": params_json if params_json is not None else json.dumps(params),
        "timeline_json": json.dumps(timeline or TIMELINE), "mode": "competitive" if params.get("mode") else "threshold",
        "top_n": int(params.get("topN", 1)), "source": "cli",
    }, event_id=event_id, occurred_at=at_ms)
    return event_id


def competitive(top_n: int) -> dict[str, Any]:
    return {"mode": "competitive", "topN": top_n, "rules": STEPS_RULES}


def _chain_event(challenge_id: int, event: str, args: dict[str, Any], block: int, ts: int) -> dict[str, Any]:
    return {"chain_id": 31337, "contract": "ChallengePay", "address": "0x" + "11" * 20, "event": event,
            "block_number": block, "block_hash": f"0x{block:064x}", "block_timestamp": ts,
            "tx_hash": f"0x{block:064x}", "tx_index": 0, "log_index": 0, "removed": False,
            "challenge_id": str(challenge_id), "args": args}


def publish_chain(producer: EventProducer, challenge_id: int, event: str, args: dict[str, Any], *,
                  block: int, ts: int) -> None:
    producer.publish(CHAIN_EVENTS, str(challenge_id), "ChainEvent",
                     _chain_event(challenge_id, event, args, block, ts),
                     event_id=f"chain:{challenge_id}:{event}:{block}:{json.dumps(args, sort_keys=True)}",
                     occurred_at=ts * 1000)


def open_challenge(producer: EventProducer, challenge_id: int, creator: str, joiners: list[str], *,
                   block: int = 1) -> None:
    publish_chain(producer, challenge_id, "ChallengeCreated",
                  {"id": str(challenge_id), "creator": creator, "kind": 0, "currency": 0, "token": "0x" + "00" * 20,
                   "startTs": str(T0), "externalId": "0x" + "00" * 32}, block=block, ts=T0)
    for who in joiners:
        publish_chain(producer, challenge_id, "Joined", {"id": str(challenge_id), "user": who, "amount": "1"},
                      block=block, ts=T0)


def publish_block(producer: EventProducer, number: int, ts: int) -> None:
    producer.publish(CHAIN_BLOCKS, "31337", "BlockConfirmed",
                     {"chain_id": 31337, "number": number, "hash": f"0x{number:064x}",
                      "parent_hash": f"0x{number - 1:064x}", "timestamp": ts, "log_count": 0},
                     event_id=f"block:{number}", occurred_at=ts * 1000)


def read_all(settings: Settings, topic: str) -> list[Received]:
    """Every event of a topic up to its current end, per partition in offset order."""
    physical = settings.topic(topic)
    serde = EventSerde(settings.schema_registry_url)
    consumer = reader(settings, "test")
    try:
        metadata = consumer.list_topics(physical, timeout=10).topics[physical]
        ends = {}
        for p in metadata.partitions:
            _low, high = _watermarks(consumer, TopicPartition(physical, p))
            if high > 0:
                ends[p] = high
        out: list[Received] = []
        consumer.assign([TopicPartition(physical, p, 0) for p in ends])
        remaining = dict(ends)
        while remaining:
            for m in consumer.consume(1000, 1.0):
                if m.error() is not None:
                    continue
                out.append(Received(topic, m.partition(), m.offset(), m.key().decode() if m.key() else None,
                                    serde.decode(m.value()), m.value(), m.timestamp()[1]))
            for tp in consumer.position([TopicPartition(physical, p) for p in remaining]):
                if tp.offset >= remaining[tp.partition]:
                    del remaining[tp.partition]
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def _watermarks(consumer: Consumer, partition: TopicPartition) -> tuple[int, int]:
    """A new topic's partition may not have its leader yet (the broker answers NOT_LEADER): ask again."""
    for attempt in range(50):
        try:
            return consumer.get_watermark_offsets(partition, timeout=10)
        except KafkaException as exc:
            if attempt == 49 or not exc.args[0].retriable() and exc.args[0].code() not in _ELECTING:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


_ELECTING = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART)


def of_type(events: list[Received], event_type: str) -> list[Received]:
    return [r for r in events if r.event.event_type == event_type]


def stage_process(settings: Settings, stage: str, log: Path | None = None,
                  also: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """`lc run STAGE` as a process; with `log`, its INFO log goes to that file. The connection settings
    and those named in `also` (field names: `rpc_url`, `confirmations`, ...) are passed on."""
    passed = ("kafka_bootstrap", "pg_dsn", "topic_prefix", *also)
    env = {**os.environ, **{env_name(name): str(getattr(settings, name)) for name in passed},
           env_name("log_level"): "INFO" if log else "WARNING"}
    stderr = log.open("ab") if log else None
    return subprocess.Popen([sys.executable, "-m", "cli.main", "run", stage], cwd=PROJECT_ROOT, env=env,
                            stderr=stderr)
