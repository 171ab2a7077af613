"""Reading a stage's inputs outside its group: to catch the state up from the offsets its changelog
covers to the group's committed position (or from offset 0 when there is no usable changelog).

`RangeReader` reads [start, end) of several partitions with one consumer and hands out decoded
batches; the caller applies each batch before asking for the next (nothing is queued beyond what the
caller holds) and may pause a partition whose items it cannot apply yet (the timestamp merge waits
for the other topics), which bounds memory by the caller's queues, not by the history.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from eventlog.admission import Inadmissible, admit, halt_at
from eventlog.config import CoreSettings
from eventlog.consumer import Received
from eventlog.failures import client_config
from eventlog.serde import EventSerde
from eventlog.topics import ordered_facts

log = logging.getLogger(__name__)

PartitionKey = tuple[str, int]  # (catalogue topic, partition)

# How a reader of a known range fetches. librdkafka prefetches up to 100,000 messages or 64 MiB per
# partition by default: a long history would fill that, and a reader needs far less ahead of what it
# applies. When that smaller queue is full the fetcher pauses for fetch.queue.backoff.ms, 1 s by
# default: reading 105,000 changelog entries took 2.6 s for 0.1 s of CPU; with 10 ms, 0.1 s. It reads
# to an end it knows, so the broker need not hold an empty fetch long either (500 ms by default).
READ_TO_END = {"queued.max.messages.kbytes": 4096, "queued.min.messages": 10000, "fetch.queue.backoff.ms": 10,
               "fetch.wait.max.ms": 5}
# Where a reader assigned a partition from its start begins: offset 0, not OFFSET_BEGINNING, whose
# offset look-up delays the first fetch by about 0.5 s. Where retention or compaction removed offset 0,
# auto.offset.reset (earliest, which `reader` sets; librdkafka's default is latest) starts at the log start.
FROM_THE_START = 0


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
    """The group's committed offset of each partition (negative = nothing committed yet). The consumer
    reads `read_committed`, so offsets of a transaction still open are waited for (KIP-447)."""
    if not partitions:
        return []
    return list(consumer.committed(partitions, timeout=60))


class RangeReader:
    """Every admissible message (`eventlog.admission`) of each partition from its start up to (excluding)
    its end offset. The others were dead-lettered when the stage first consumed them; on an ordered
    chain-fact topic such a message halts the stage (`StageHalted`), as it did live."""


    def __init__(self, settings: CoreSettings, ranges: Mapping[PartitionKey, tuple[int, int]], purpose: str,
                 batch_size: int = 1000) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self._ranges = {key: span for key, span in ranges.items() if span[1] > span[0]}
        self._open = set(self._ranges)
        self._paused: set[PartitionKey] = set()
        self._serde = EventSerde(settings.schema_registry_url)
        self._catalogue = {settings.topic(topic): topic for topic, _p in self._ranges}
        self._consumer = reader(settings, purpose, READ_TO_END) if self._ranges else None
        if self._consumer is not None:
            self._consumer.assign([TopicPartition(settings.topic(topic), p, start)
                                   for (topic, p), (start, _end) in self._ranges.items()])

    def done(self, key: PartitionKey) -> bool:
        """Read to its end (or nothing to read)."""
        return key not in self._open

    def pause(self, key: PartitionKey) -> None:
        if key in self._open and key not in self._paused and self._consumer is not None:
            self._consumer.pause([TopicPartition(self.settings.topic(key[0]), key[1])])
            self._paused.add(key)

    def resume(self, key: PartitionKey) -> None:
        if key in self._paused and self._consumer is not None:
            self._consumer.resume([TopicPartition(self.settings.topic(key[0]), key[1])])
            self._paused.discard(key)

    def batches(self, *, on_idle: Callable[[], None] | None = None) -> Iterator[list[Received]]:
        """Decoded batches of messages until every range is read.

        `on_idle` runs when every open partition is paused (the caller must make room, or resume one)."""
        consumer = self._consumer
        if consumer is None:
            return
        try:
            while self._open:
                if self._open <= self._paused:
                    if on_idle is None:
                        raise RuntimeError("every partition of the range reader is paused")
                    on_idle()
                    continue
                batch: list[Received] = []
                for message in consumer.consume(self.batch_size, 0.05):  # waits the whole timeout unless a batch is full
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            continue
                        raise KafkaException(error)
                    topic = self._catalogue[message.topic()]
                    end = self._ranges[(topic, message.partition())][1]
                    if message.offset() >= end:
                        continue
                    try:
                        key, event = admit(self._serde, topic, message.key(), message.value())
                    except Inadmissible as exc:
                        if ordered_facts(topic):  # never skipped live: the stage halted before it
                            raise halt_at(topic, message.partition(), message.offset(), str(exc)) from None
                        continue  # dead-lettered when it was first consumed
                    batch.append(Received(topic, message.partition(), message.offset(), key, event, message.value(),
                                          message.timestamp()[1]))
                self._close_finished()
                yield batch
        finally:
            consumer.close()

    def _close_finished(self) -> None:
        assert self._consumer is not None
        reading = [key for key in self._open if key not in self._paused]
        positions = self._consumer.position([TopicPartition(self.settings.topic(t), p) for t, p in reading])
        for key, tp in zip(reading, positions, strict=True):
            if tp.offset >= self._ranges[key][1]:
                self._open.discard(key)
                self._consumer.incremental_unassign([TopicPartition(tp.topic, tp.partition)])
