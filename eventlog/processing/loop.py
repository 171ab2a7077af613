"""The consumer loop the stream processors share: `ConsumerLoop` plus each message's Kafka timestamp
and whether a partition has been read to its end (for the timestamp-ordered merge of the dispatcher).
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, Message

from eventlog.consumer import BatchHandler, ConsumerLoop, Received


class TimedLoop(ConsumerLoop):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        extra = {"enable.partition.eof": True, **(kwargs.pop("extra_config", None) or {})}
        super().__init__(*args, extra_config=extra, **kwargs)
        self._timestamps: dict[tuple[str, int, int], int] = {}
        self.at_end: dict[tuple[str, int], bool] = {}  # (catalogue topic, partition) -> read to its end

    def process(self, messages: list[Message], handle: BatchHandler) -> None:
        self._timestamps = {}
        data = []
        for m in messages:
            error = m.error()
            key = (self.catalogue_topic(m.topic()), m.partition())
            if error is None:
                self._timestamps[(key[0], key[1], m.offset())] = m.timestamp()[1]
                self.at_end[key] = False
            elif error.code() == KafkaError._PARTITION_EOF:
                self.at_end[key] = True
                continue  # noted here; the base loop would try to commit a batch of only these
            data.append(m)
        if data:
            super().process(data, handle)

    def timestamp_of(self, received: Received) -> int:
        """The Kafka timestamp (epoch ms) of a message of the batch being handled."""
        return self._timestamps[(received.topic, received.partition, received.offset)]
