"""Chain time: every instance of a stage reads lc.chain.blocks (one partition) outside its group, from
the oldest block one of its partitions has still to take, not from the beginning.

A blocks message the clock cannot admit halts the stage (`StageHalted`): chain time must not skip a
block, and a stage that went on would decide deadlines on a clock that is not the chain's. The clock
does not read past it, so no changelog stores a block position beyond it.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from domain.chain_time import ChainTime
from eventlog.admission import Inadmissible, admit, halt_at
from eventlog.config import CoreSettings
from eventlog.processing.merge import BLOCKS, Timed
from eventlog.processing.restore import reader
from eventlog.serde import EventSerde
from eventlog.topics import CHAIN_BLOCKS

log = logging.getLogger(__name__)
WAITING_REPORT_SECONDS = 30.0


class Stop(Protocol):
    def is_set(self) -> bool: ...


class BlockClock:
    """The confirmed blocks in topic order, as merge entries (`Timed[ChainTime]`, their `offset` the
    topic offset), from `base` on, and whether the topic has been read to its end. Reverted blocks do not
    move chain time back (it is the newest confirmed block time, and the replacing blocks follow).

    A partition's merge takes blocks by index into `blocks`; `offset_of` and `index_of` translate an
    index to the topic offset a changelog stores and back, so the list can be trimmed or re-read."""

    def __init__(self, settings: CoreSettings, purpose: str) -> None:
        self.serde = EventSerde(settings.schema_registry_url)
        self.topic = settings.topic(CHAIN_BLOCKS)
        self.consumer = reader(settings, purpose, {"enable.partition.eof": True})
        self.blocks: list[Timed[ChainTime]] = []
        self.base: int | None = None  # every confirmed block at or after this offset is in `blocks`
        self.next_offset = 0  # the next offset to read
        self.at_end = True  # nothing to read until started

    def start(self, offset: int, stop: Stop | None = None) -> None:
        """Read the blocks from `offset` on (again, when it lies before what is held) to the end (or until
        `stop` is set)."""
        if self.base is not None and offset >= self.base:
            return
        self.blocks = []
        self.base = self.next_offset = offset
        self.at_end = False
        self.consumer.assign([TopicPartition(self.topic, 0, offset)])
        self.catch_up(stop)

    def offset_of(self, index: int) -> int:
        """The topic offset of the block at `index`; past the last one, the next offset to read."""
        return self.blocks[index].offset if index < len(self.blocks) else self.next_offset

    def index_of(self, offset: int) -> int:
        """The index of the first held block at or after `offset`."""
        return bisect_left(self.blocks, offset, key=lambda block: block.offset)

    def trim(self, count: int) -> None:
        """Drop the first `count` blocks (every partition has taken them)."""
        if count > 0:
            self.base = self.offset_of(count)
            del self.blocks[:count]

    def poll(self, timeout: float = 0.0) -> bool:
        """Read what is there now (until the end of the topic); True when new blocks arrived."""
        if self.base is None:
            return False
        before = len(self.blocks)
        while True:
            messages = self.consumer.consume(1000, timeout)
            if not messages:
                break
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        # (an end reported for what was assigned before a re-read is not this read's end)
                        self.at_end = self.at_end or message.offset() >= self.next_offset
                        continue
                    raise KafkaException(error)
                if message.offset() < self.next_offset:
                    continue  # fetched for the assignment before a re-read
                self.at_end = False
                try:
                    _key, event = admit(self.serde, CHAIN_BLOCKS, message.key(), message.value())
                except Inadmissible as exc:
                    raise halt_at(CHAIN_BLOCKS, message.partition(), message.offset(), f"chain clock: {exc}") from None
                self.next_offset = message.offset() + 1
                if event.event_type == "BlockConfirmed":
                    self.blocks.append(Timed(message.timestamp()[1], BLOCKS, message.offset(),
                                             ChainTime(int(event.payload["timestamp"]))))
            if self.at_end:
                break
        return len(self.blocks) > before

    def catch_up(self, stop: Stop | None = None) -> None:
        """Block until the topic has been read to its end once, or until `stop` is set (a stage that cannot
        read the blocks must still end on SIGTERM); says every half minute what it is waiting for."""
        started = reported = time.monotonic()
        while not self.at_end and not (stop is not None and stop.is_set()):
            self.poll(0.5)
            if not self.at_end and time.monotonic() - reported >= WAITING_REPORT_SECONDS:
                reported = time.monotonic()
                log.warning("still reading %s to its end after %.0f s (%d blocks so far); the stage starts once "
                            "it has; check Kafka if this persists", self.topic, reported - started, len(self.blocks))

    def close(self) -> None:
        self.consumer.close()
