"""`lc tail TOPIC`: a topic's events, decoded, one JSON object per line (no consumer group)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from confluent_kafka import TopicPartition

from cli.settings import Settings
from eventlog.processing.restore import FROM_THE_START, reader
from eventlog.serde import EventSerde, UndecodableMessage


def tail(settings: Settings, topic: str, *, limit: int = 0, follow: bool = True) -> Iterator[str]:
    physical = settings.topic(topic)
    consumer = reader(settings, "tail", {"enable.partition.eof": True})
    serde = EventSerde(settings.schema_registry_url)
    try:
        metadata = consumer.list_topics(physical, timeout=10).topics[physical]
        if metadata.error is not None:
            raise SystemExit(f"lc tail: topic {physical} not found")
        partitions = sorted(metadata.partitions)
        consumer.assign([TopicPartition(physical, p, FROM_THE_START) for p in partitions])
        at_end: set[int] = set()
        printed = 0
        while True:
            message = consumer.poll(0.5)
            if message is None:
                if not follow and len(at_end) == len(partitions):
                    return
                continue
            if message.error() is not None:
                at_end.add(message.partition())
                if not follow and len(at_end) == len(partitions):
                    return
                continue
            at_end.discard(message.partition())
            yield json.dumps(_describe(serde, message.partition(), message.offset(), message.key(),
                                       message.value()), default=_json_default)
            printed += 1
            if limit and printed >= limit:
                return
    finally:
        consumer.close()


def _describe(serde: EventSerde, partition: int, offset: int, key: bytes | None,
              value: bytes | None) -> dict[str, Any]:
    where = {"partition": partition, "offset": offset, "key": key.decode(errors="replace") if key else None}
    try:
        event = serde.decode(value)
    except UndecodableMessage as exc:
        return {**where, "undecodable": str(exc)}
    return {**where, "event_type": event.event_type, "event_id": event.event_id,
            "occurred_at": event.occurred_at, "producer": event.producer,
            "schema_version": event.schema_version, "payload": event.payload}


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return str(value)
