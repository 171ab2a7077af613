"""What the evaluator and the dispatcher share: a consumer group over co-partitioned input topics,
merged per partition by Kafka timestamp, processed in that order, and committed together with the
state they change (eventlog/processing/changelog.py).

- Inputs are co-partitioned (same key, same partition count); the range assignor gives partition p
  of every input topic to the same instance, and partition p of the stage's changelog holds its state.
- `read` turns a message into the stage's item (None: nothing to do; the offset still advances) and
  may reject it to lc.dlq. Items wait in the partition's `PartitionMerge` until their order is
  certain, then `apply` folds them, publishes the outputs and names the state keys it changed.
- One Kafka transaction commits the outputs, the changed state entries, each touched partition's
  meta entry (covered offsets, block position) and the input offsets, after a drain once
  COMMIT_SECONDS have passed since the last commit (and every COMMIT_EVERY entries of a long one):
  a crash repeats a whole transaction's work or nothing of it. A partition's messages the loop
  dead-lettered count as processed once nothing read before them is still waiting in the merge.
- On assignment a partition's state is loaded from the changelog and its inputs are read from the
  offsets the state covers up to the group's position (nothing, normally), applied with `emit=False`
  while they are read. Without a usable changelog (a new stage, another state format, or
  `--restore-from-zero`) the state is rebuilt from offset 0 the same way, and written whole.
- A message of an ordered chain-fact topic that cannot be read halts the stage (`StageHalted`), live,
  in a replay and in the chain clock alike.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from confluent_kafka import TopicPartition

from domain.chain_time import ChainTime
from eventlog.admission import halt_at
from eventlog.config import CoreSettings
from eventlog.consumer import Received, Reject, StopFlag
from eventlog.processing.changelog import PartitionPlan, Restored, StageChangelog
from eventlog.processing.clock import BlockClock
from eventlog.processing.loop import TimedLoop
from eventlog.processing.merge import BLOCKS, PartitionMerge, Timed
from eventlog.processing.restore import PartitionKey, RangeReader
from eventlog.producer import EventProducer, close_quietly
from eventlog.topics import CHAIN_BLOCKS, ordered_facts

log = logging.getLogger(__name__)

Item = TypeVar("Item")
CO_PARTITIONED = {"group.remote.assignor": "range"}
# an instance killed inside a transaction holds back read_committed readers of its outputs until the
# broker aborts it: well before the group hands its partitions to another member (45 s session timeout).
# message.timeout.ms stays below it, so a delivery that fails is the producer's own news, never raced by
# the coordinator aborting the transaction first (librdkafka issue 3297): a leader failover slower than
# that fails a delivery, which aborts the transaction; the stage then restores its partitions and goes on
# (eventlog/processing/loop.py), also when the producer is lost on the way (`ProducerLost`)
#
# connections.max.idle.ms: librdkafka (2.16) can wait forever in send_offsets_to_transaction when the group
# coordinator's node is gone from the cluster's metadata: the request waits for a state change of that
# node, whose broker thread has been ended (librdkafka issues 5511 and 5456). Closing idle connections
# makes the producer's other brokers change state, which sends the request to the new coordinator.
TRANSACTIONS = {"transaction.timeout.ms": 20_000, "message.timeout.ms": 15_000, "connections.max.idle.ms": 10_000}
QUEUE_HIGH, QUEUE_LOW = 5000, 1000  # replay: pause a partition whose merge queue holds more than HIGH items
COMMIT_EVERY = 5000  # entries applied in one transaction at most (a drain can hold a long backlog)
COMMIT_SECONDS = 0.05  # longest a drain's outputs wait for the next commit


def _refused_in_replay(received: Received, reason: str) -> None:
    """A replayed input `read` refuses was dead-lettered when it was first consumed; an ordered chain
    fact halted the stage then, and halts it again."""
    if ordered_facts(received.topic):
        raise halt_at(received.topic, received.partition, received.offset, reason)


def instance_transactional_id(group: str) -> str:
    """Each instance its own: zombies are fenced by the group's generation (KIP-447), not by the id."""
    return f"{group}-{uuid.uuid4().hex[:12]}"


class MergedStage(Generic[Item]):
    group: str
    inputs: tuple[str, ...]
    changelog_topic: str  # catalogue topic of the stage's state
    state_version: int = 1  # bump when a stored state can no longer be read as the state (statecodec)

    def __init__(self, settings: CoreSettings, *, stop: StopFlag | None = None, batch_size: int = 1000,
                 clock: BlockClock | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.producer = EventProducer(settings, self.group, transactional_id=instance_transactional_id(self.group),
                                      extra_config=TRANSACTIONS, fence_on_start=False)
        self.changelog = StageChangelog(settings, self.changelog_topic, self.group, self.inputs, self.state_version,
                                    from_zero=settings.restore_from_zero)
        self.merges: dict[int, PartitionMerge[Item | ChainTime | None]] = {}
        self.restored: Restored | None = None
        self._processed: dict[tuple[str, int], int] = {}
        self._taken = 0  # entries applied since the last commit
        self._committed_at = time.monotonic()
        self._read_to: dict[tuple[str, int], int] = {}  # next offset after the last message read, dead letters too
        self.loop = TimedLoop(
            settings, self.group, self.inputs, stop=stop, on_assign=self.restore, on_revoke=self._on_revoke,
            on_reset=self._reset, batch_size=batch_size, poll_timeout=settings.stream_poll_seconds,
            commit_to_kafka=False, extra_config=CO_PARTITIONED,
        )

    # --- what a stage defines -----------------------------------------------------------------

    def read(self, received: Received, reject: Reject) -> Item | None:
        raise NotImplementedError

    def apply(self, partition: int, entry: Timed[Item | ChainTime], emit: bool) -> None:
        """Fold one merged entry (an item, or a block when the stage has a clock); publish if `emit`;
        `self.changelog.changed(partition, key)` for every state key it changes."""
        raise NotImplementedError

    def forget(self, partition: int) -> None:
        """Drop the state of a partition this instance no longer owns."""
        raise NotImplementedError

    def state_keys(self, partition: int) -> Iterable[str]:
        """Every key of the partition's state."""
        raise NotImplementedError

    def encode_state(self, partition: int, key: str) -> bytes | None:
        """The stored form of one key's value (None: the key is gone)."""
        raise NotImplementedError

    def load_state(self, partition: int, key: str, value: bytes) -> None:
        """Install one stored value."""
        raise NotImplementedError

    def partition_extra(self, partition: int) -> dict[str, Any]:
        """What the stage keeps per partition besides its keys (stored in the partition's meta entry)."""
        return {}

    def load_partition_extra(self, partition: int, extra: dict[str, Any]) -> None:
        return None

    # --- the machinery ------------------------------------------------------------------------

    @property
    def stop(self) -> StopFlag:
        return self.loop.stop

    def run(self, until: Callable[[], bool] | None = None) -> None:
        def tick() -> bool:
            if self.clock is not None:
                self.clock.poll()
            self._drain()
            return until() if until is not None else False

        if self.clock is not None:  # (read from where the restored partitions need it, on assignment)
            self.loop.require_topics(also=[CHAIN_BLOCKS])
        try:
            self.loop.run(self.handle, tick)
        except BaseException:
            close_quietly(self.producer)
            raise
        else:
            self.producer.close()  # (the consumer's close revoked the partitions: everything was committed)
        finally:
            if self.clock is not None:
                self.clock.close()

    def handle(self, batch: Sequence[Received], reject: Reject) -> None:
        for received in batch:
            self._push(received, reject)
        self._read_to.update(self.loop.batch_positions)
        self._drain()

    def _push(self, received: Received, reject: Reject) -> None:
        merge = self.merges.get(received.partition)
        if merge is not None:
            merge.push(Timed(received.timestamp, received.topic, received.offset, self.read(received, reject)))

    def _blocks(self) -> tuple[list[Timed[ChainTime]], bool]:
        return (self.clock.blocks, self.clock.at_end) if self.clock is not None else ([], True)

    def _take(self, partition: int, entries: Iterator[Timed[Item | ChainTime | None]], emit: bool) -> None:
        for entry in entries:
            if entry.source == BLOCKS:
                self.changelog.touched(partition)  # its block position moved
            else:
                self._processed[(entry.source, partition)] = entry.offset + 1
            if entry.item is not None:
                self.apply(partition, entry, emit)  # type: ignore[arg-type]
            self._taken += 1
            if emit and self._taken >= COMMIT_EVERY:
                # a backlog drains in many transactions: one open longer than its timeout is aborted
                self._commit()

    def _drain(self) -> None:
        """Process what the merges can order, then commit it."""
        blocks, blocks_at_end = self._blocks()
        for p in sorted(self.merges):
            merge = self.merges[p]
            for topic in self.inputs:
                merge.mark_end(topic, self.loop.at_end.get((topic, p), False))
            self._take(p, merge.drain(blocks, blocks_at_end), emit=True)
            self._count_read_beyond_the_queue(merge, p)
        if self.clock is not None and self.merges:
            taken = min(merge.blocks_taken for merge in self.merges.values())
            if taken >= 1000:  # every partition is past them
                self.clock.trim(taken)
                for merge in self.merges.values():
                    merge.blocks_taken -= taken
        # a commit costs the broker round trips: outputs wait up to COMMIT_SECONDS to share one
        if self._taken >= COMMIT_EVERY or time.monotonic() - self._committed_at >= COMMIT_SECONDS:
            self._commit()

    def _count_read_beyond_the_queue(self, merge: PartitionMerge[Item | ChainTime | None], partition: int) -> None:
        """A topic with nothing left in the partition's queue has processed all it read: its offset
        may move past the messages the loop dead-lettered after the last item (they never enter)."""
        for topic in self.inputs:
            read_to = self._read_to.get((topic, partition))
            if read_to is not None and not merge.queues[topic]:
                del self._read_to[(topic, partition)]
                if read_to > self._processed.get((topic, partition), 0):  # (never below the position: `advanced`)
                    self._processed[(topic, partition)] = read_to

    def _commit(self) -> None:
        """One transaction: the outputs published since the last commit, the changed state, the offsets."""
        if not self._processed and not self.changelog.pending and not self.producer.in_transaction:
            return
        offsets = [TopicPartition(self.settings.topic(topic), p, self.changelog.advanced(topic, p, processed))
                   for (topic, p), processed in self._processed.items()]
        self._processed.clear()
        self._taken = 0
        self._committed_at = time.monotonic()
        self.changelog.write(self.producer, self.encode_state, self._meta_extra)
        self.producer.commit(offsets, self.loop.consumer.consumer_group_metadata())

    def _meta_extra(self, partition: int) -> dict[str, Any]:
        extra = self.partition_extra(partition)
        merge = self.merges.get(partition)
        if self.clock is not None and merge is not None:
            extra["block_offset"] = self.clock.offset_of(merge.blocks_taken)
        return extra

    # --- assignment ---------------------------------------------------------------------------

    def restore(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The assignment callback: restore the partitions' state; returns them positioned where to resume."""
        to_catalogue = self.loop.catalogue_topic
        self._commit()  # what the partitions held already processed: from here `_processed` is the replay's
        plans = self.changelog.plan_assignment(self.loop.consumer, partitions, to_catalogue)
        entries = 0
        try:
            for plan in plans:
                p = plan.partition
                self.merges[p] = PartitionMerge(self.inputs)
                if plan.values is not None:
                    for key, value in plan.values.items():
                        self.load_state(p, key, value)
                    entries += len(plan.values)
                    self.load_partition_extra(p, plan.extra)
            if self.clock is not None:
                self._position_blocks(plans)
            replayed = self._replay(plans)
        except BaseException:
            # (a halt, a broker error): nothing of a half-restored partition may reach a commit
            self._processed.clear()
            self._drop({plan.partition for plan in plans})
            raise
        for plan in plans:
            self.changelog.assigned(plan, self.state_keys(plan.partition))
        self._processed.clear()  # what the replay processed is covered by the positions it resumes at
        self._commit()  # a rebuilt partition's state, written whole
        self.restored = self.changelog.report(self.group, plans, entries, replayed)
        return self.changelog.resume_at(plans, partitions, to_catalogue)

    def _position_blocks(self, plans: list[PartitionPlan]) -> None:
        """Where each partition's merge is in the blocks: stored, or the first block for a rebuild."""
        assert self.clock is not None
        clock = self.clock
        wanted = {plan.partition: 0 if plan.rebuilt else int(plan.extra.get("block_offset", 0)) for plan in plans}
        held = {p: clock.offset_of(merge.blocks_taken) for p, merge in self.merges.items() if p not in wanted}
        clock.start(min(wanted.values(), default=0), self.stop)
        for p, offset in {**held, **wanted}.items():
            self.merges[p].blocks_taken = clock.index_of(offset)

    def _replay(self, plans: list[PartitionPlan]) -> int:
        """Apply the inputs of the plans' ranges (emit=False) while reading them."""
        ranges: dict[PartitionKey, tuple[int, int]] = {
            (topic, plan.partition): (plan.starts[topic], plan.ends[topic]) for plan in plans for topic in self.inputs}
        reader = RangeReader(self.settings, ranges, self.group)
        parts = [plan.partition for plan in plans]
        count = 0

        def drain() -> None:
            # a replay stops after the last input: blocks after it are taken live (and publish)
            blocks, blocks_at_end = self._blocks()
            for p in parts:
                merge = self.merges[p]
                for topic in self.inputs:
                    merge.mark_end(topic, reader.done((topic, p)))
                self._take(p, merge.drain(blocks, blocks_at_end, stop_when_topics_empty=True), emit=False)

        def unblock() -> None:
            drain()
            for key in ranges:
                reader.resume(key)

        for batch in reader.batches(on_idle=unblock):
            for received in batch:
                self._push(received, _refused_in_replay)
            count += len(batch)
            drain()
            for (topic, p) in ranges:
                queued = len(self.merges[p].queues[topic])
                if queued > QUEUE_HIGH:
                    reader.pause((topic, p))
                elif queued < QUEUE_LOW:
                    reader.resume((topic, p))
        drain()
        return count

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        self._commit()  # the new owner restores from what is committed
        self._drop({tp.partition for tp in partitions})
        for tp in partitions:
            key = (self.loop.catalogue_topic(tp.topic), tp.partition)
            self.loop.at_end.pop(key, None)
            self._read_to.pop(key, None)

    def _drop(self, partitions: set[int]) -> None:
        for p in sorted(partitions):
            if self.merges.pop(p, None) is not None:
                self.forget(p)
            self.changelog.forget(p)

    def _reset(self) -> None:
        """After an aborted transaction (eventlog/processing/loop.py): forget every partition's state and what
        was processed toward the next commit; the loop restores them from what was committed."""
        self._processed.clear()
        self._read_to.clear()
        self._taken = 0
        self._drop(set(self.merges))
