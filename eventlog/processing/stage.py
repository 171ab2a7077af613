"""What the evaluator and the dispatcher share: a consumer group over co-partitioned input topics,
merged per partition by Kafka timestamp, processed in that order, offsets committed only up to what
has been processed and published, and state restored on assignment from the inputs.

- Inputs are co-partitioned (same key, same partition count); the range assignor gives partition p
  of every input topic to the same instance.
- `read` turns a message into the stage's item (None: nothing to do; the offset still advances) and
  may reject it to lc.dlq. Items wait in the partition's `PartitionMerge` until their order is
  certain, then `apply` folds them and publishes the outputs.
- After a drain the outputs are flushed, then the offsets of the processed inputs are committed: a
  crash repeats outputs (same ids), never loses one. A partition's messages the loop dead-lettered
  count as processed once nothing read before them is still waiting in the merge.
- On assignment the newly assigned partitions are read from offset 0 up to the committed position
  and applied with `emit=False`: the state is rebuilt from the topics, not kept in a store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from confluent_kafka import TopicPartition

from domain.chain_time import ChainTime
from eventlog.admission import halts_logged
from eventlog.config import CoreSettings
from eventlog.consumer import Received, Reject, StopFlag
from eventlog.processing.clock import BlockClock
from eventlog.processing.loop import TimedLoop
from eventlog.processing.merge import BLOCKS, PartitionMerge, Timed
from eventlog.processing.restore import committed_positions, read_up_to
from eventlog.producer import EventProducer
from eventlog.topics import CHAIN_BLOCKS

log = logging.getLogger(__name__)

Item = TypeVar("Item")
CO_PARTITIONED = {"group.remote.assignor": "range"}


def _ignore(_received: Received, _reason: str) -> None:
    return None


class MergedStage(Generic[Item]):
    group: str
    inputs: tuple[str, ...]

    def __init__(self, settings: CoreSettings, *, stop: StopFlag | None = None, batch_size: int = 1000,
                 clock: BlockClock | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.producer = EventProducer(settings, self.group)
        self.merges: dict[int, PartitionMerge[Item | ChainTime | None]] = {}
        self._processed: dict[tuple[str, int], int] = {}
        self._read_to: dict[tuple[str, int], int] = {}  # next offset after the last message read, dead letters too
        self._floor: dict[tuple[str, int], int] = {}  # committed at assignment: never commit below it
        self.loop = TimedLoop(
            settings, self.group, self.inputs, stop=stop, on_assign=self._on_assign, on_revoke=self._on_revoke,
            batch_size=batch_size, poll_timeout=settings.stream_poll_seconds, commit_to_kafka=False,
            extra_config=CO_PARTITIONED,
        )

    # --- what a stage defines -----------------------------------------------------------------

    def read(self, received: Received, reject: Reject) -> Item | None:
        raise NotImplementedError

    def apply(self, partition: int, entry: Timed[Item | ChainTime], emit: bool) -> None:
        """Fold one merged entry (an item, or a block when the stage has a clock); publish if `emit`."""
        raise NotImplementedError

    def forget(self, partition: int) -> None:
        """Drop the state of a partition this instance no longer owns."""
        raise NotImplementedError

    # --- the machinery ------------------------------------------------------------------------

    @property
    def stop(self) -> StopFlag:
        return self.loop.stop

    def run(self, until: Callable[[], bool] | None = None) -> None:
        def tick() -> bool:
            if self.clock is not None:
                self.clock.poll()
            self._drain(emit=True)
            return until() if until is not None else False

        if self.clock is not None:
            self.loop.require_topics(also=[CHAIN_BLOCKS])
            with halts_logged(self.group):
                self.clock.catch_up(self.stop)
        try:
            self.loop.run(self.handle, tick)
        finally:
            self.producer.close()
            if self.clock is not None:
                self.clock.close()

    def handle(self, batch: Sequence[Received], reject: Reject) -> None:
        for received in batch:
            self._push(received, self.loop.timestamp_of(received), reject)
        self._read_to.update(self.loop.batch_positions)
        self._drain(emit=True)

    def _push(self, received: Received, timestamp: int, reject: Reject) -> None:
        merge = self.merges.get(received.partition)
        if merge is not None:
            merge.push(Timed(timestamp, received.topic, received.offset, self.read(received, reject)))

    def _drain(self, emit: bool, only: set[int] | None = None) -> None:
        """Process what the merges can order; `emit=False` (a restore) replays the committed prefix."""
        blocks = self.clock.blocks if self.clock is not None else []
        blocks_at_end = self.clock.at_end if self.clock is not None else True
        for p in sorted(self.merges if only is None else only & set(self.merges)):
            merge = self.merges[p]
            for topic in self.inputs:
                merge.mark_end(topic, self.loop.at_end.get((topic, p), False) if emit else True)
            for entry in merge.drain(blocks, blocks_at_end, stop_when_topics_empty=not emit):
                if entry.source != BLOCKS:
                    self._processed[(entry.source, p)] = entry.offset + 1
                if entry.item is not None:
                    self.apply(p, entry, emit)  # type: ignore[arg-type]
            if emit:
                self._count_read_beyond_the_queue(merge, p)
        if emit and self._processed:
            self.producer.flush()  # outputs first, then the offsets of what produced them
            self._commit()

    def _count_read_beyond_the_queue(self, merge: PartitionMerge[Item | ChainTime | None], partition: int) -> None:
        """A topic with nothing left in the partition's queue has processed all it read: its offset
        may move past the messages the loop dead-lettered after the last item (they never enter)."""
        for topic in self.inputs:
            read_to = self._read_to.get((topic, partition))
            if read_to is not None and not merge.queues[topic]:
                del self._read_to[(topic, partition)]
                if read_to > self._processed.get((topic, partition), self._floor.get((topic, partition), 0)):
                    self._processed[(topic, partition)] = read_to

    def _commit(self) -> None:
        offsets = [TopicPartition(self.settings.topic(topic), p, max(offset, self._floor.get((topic, p), 0)))
                   for (topic, p), offset in self._processed.items()]
        self._processed.clear()
        self.loop.consumer.commit(offsets=offsets, asynchronous=False)

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        committed = committed_positions(self.loop.consumer, partitions)
        for tp in committed:
            topic = self.loop.catalogue_topic(tp.topic)
            self._floor[(topic, tp.partition)] = max(tp.offset, 0)
            self.merges.setdefault(tp.partition, PartitionMerge(self.inputs))
        restored = 0
        for received, timestamp in read_up_to(self.settings, committed, self.loop.catalogue_topic, self.group):
            self._push(received, timestamp, _ignore)
            restored += 1
        self._drain(emit=False, only={tp.partition for tp in partitions})
        self._processed.clear()
        log.info("%s restored %d input events for %d partitions", self.group, restored, len(partitions))

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        if self._processed:
            self.producer.flush()
            self._commit()
        for p in sorted({tp.partition for tp in partitions}):
            if self.merges.pop(p, None) is not None:
                self.forget(p)
        for tp in partitions:
            key = (self.loop.catalogue_topic(tp.topic), tp.partition)
            self.loop.at_end.pop(key, None)
            self._floor.pop(key, None)
            self._read_to.pop(key, None)
