"""Rebuilding a processor's state from its input topics (no state lives only in memory or a store).

On assignment a processor reads the newly assigned partitions of its co-partitioned inputs from the
beginning up to the group's committed position, and folds them into its state without publishing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from eventlog.admission import Inadmissible, admit
from eventlog.config import CoreSettings
from eventlog.consumer import Received
from eventlog.failures import client_config
from eventlog.serde import EventSerde

log = logging.getLogger(__name__)


def reader(settings: CoreSettings, purpose: str, extra: dict[str, Any] | None = None) -> Consumer:
    """A consumer outside every group (assign only, never commits)."""
    return Consumer({
        **client_config(settings.kafka_bootstrap, f"{purpose}-reader"),
        "group.id": f"{settings.topic_prefix}lc-reader-{purpose}-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        **(extra or {}),
    })


def committed_positions(consumer: Consumer, partitions: list[TopicPartition]) -> list[TopicPartition]:
    """The group's committed offset of each partition (negative = nothing committed yet)."""
    if not partitions:
        return []
    return list(consumer.committed(partitions, timeout=30))


def read_up_to(
    settings: CoreSettings, ends: list[TopicPartition], to_catalogue: Callable[[str], str], purpose: str
) -> Iterator[tuple[Received, int]]:
    """Every admissible message of each partition from offset 0 up to (excluding) its end offset, with
    its Kafka timestamp (epoch ms); the others were dead-lettered when the stage first consumed them."""
    wanted = {(tp.topic, tp.partition): tp.offset for tp in ends if tp.offset > 0}
    if not wanted:
        return
    serde = EventSerde(settings.schema_registry_url)
    consumer = reader(settings, purpose)
    try:
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for (t, p) in wanted])
        remaining = dict(wanted)
        while remaining:
            for message in consumer.consume(1000, 1.0):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(error)
                key = (message.topic(), message.partition())
                end = remaining.get(key)
                if end is None or message.offset() >= end:
                    continue
                topic = to_catalogue(message.topic())
                try:
                    text_key, event = admit(serde, topic, message.key(), message.value())
                except Inadmissible:
                    continue  # dead-lettered when it was first consumed
                yield Received(topic, message.partition(), message.offset(), text_key, event,
                               message.value()), message.timestamp()[1]
            for tp in consumer.position([TopicPartition(t, p) for (t, p) in remaining]):
                if tp.offset >= remaining[(tp.topic, tp.partition)]:
                    del remaining[(tp.topic, tp.partition)]
                    consumer.incremental_unassign([TopicPartition(tp.topic, tp.partition)])
    finally:
        consumer.close()
