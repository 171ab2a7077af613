"""Chain time: every instance of a stage reads lc.chain.blocks (one partition) whole, outside its group.

A blocks message the clock cannot admit halts the stage (`StageHalted`): chain time must not skip a
block, and a stage that went on would decide deadlines on a clock that is not the chain's.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

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
    """The confirmed blocks in topic order, as merge entries (`Timed[ChainTime]`), and whether the
    topic has been read to its end. Reverted blocks do not move chain time back (it is the newest
    confirmed block time, and the replacing blocks follow)."""

    def __init__(self, settings: CoreSettings, purpose: str) -> None:
        self.serde = EventSerde(settings.schema_registry_url)
        self.consumer = reader(settings, purpose, {"enable.partition.eof": True})
        self.topic = settings.topic(CHAIN_BLOCKS)
        self.consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        self.blocks: list[Timed[ChainTime]] = []
        self.at_end = False

    def poll(self, timeout: float = 0.0) -> bool:
        """Read what is there now (until the end of the topic); True when new blocks arrived."""
        before = len(self.blocks)
        while True:
            messages = self.consumer.consume(1000, timeout)
            if not messages:
                break
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        self.at_end = True
                        continue
                    raise KafkaException(error)
                self.at_end = False
                try:
                    _key, event = admit(self.serde, CHAIN_BLOCKS, message.key(), message.value())
                except Inadmissible as exc:
                    raise halt_at(CHAIN_BLOCKS, message.partition(), message.offset(), f"chain clock: {exc}") from None
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
