"""What the chain writers share: per-challenge views folded from co-partitioned topics, kept in the
stage's changelog topic, and a reconcile pass after every poll that acts on the views.

After each batch one Kafka transaction writes the views it changed to the changelog (`v/<challenge>`
-> the view, statecodec JSON) with the batch's input offsets (eventlog/processing/changelog.py). On
assignment a partition's views are loaded from the changelog and the inputs are folded from the
offsets they cover up to the group's position (nothing is sent while restoring); without a usable
changelog they are folded from offset 0 and written whole. The reconcile pass then does what the
views say is missing, checking the chain first. Events the stage publishes are folded into its views
at once, and their redelivery (they come back on lc.jobs) is a no-op: every fold is idempotent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from confluent_kafka import TopicPartition

from effects.inputs import read_input
from effects.settings import WriterSettings
from eventlog.consumer import Received, Reject, StopFlag
from eventlog.processing.changelog import PartitionPlan, Restored, StageChangelog
from eventlog.processing.loop import TimedLoop
from eventlog.processing.restore import RangeReader
from eventlog.processing.stage import TRANSACTIONS, instance_transactional_id
from eventlog.processing.statecodec import StateCodec
from eventlog.producer import EventProducer
from eventlog.topics import JOBS

log = logging.getLogger(__name__)

View = TypeVar("View")


class ViewStage(Generic[View]):
    """Subclasses give `view_type`, `initial_view`, `accepts`, `apply` and `reconcile`."""

    group: str = ""
    topics: tuple[str, ...] = ()
    changelog_topic: str = ""
    view_type: type[View]
    state_version: int = 1  # bump when a stored view can no longer be read as the view (statecodec)

    def __init__(self, settings: WriterSettings, *, stop: StopFlag | None = None, poll_seconds: float = 0.2) -> None:
        self.settings = settings
        self.views: dict[int, View] = {}
        self.partition_of: dict[int, int] = {}
        self.retry_at: dict[int, float] = {}  # challenge id -> monotonic time of its next try
        self.restored: Restored | None = None
        self.producer = EventProducer(settings, self.group)  # what the stage reports, each flushed at once
        self.state_producer = EventProducer(settings, f"{self.group}-state",
                                            transactional_id=instance_transactional_id(self.group),
                                            extra_config=TRANSACTIONS)
        self.changelog = StageChangelog(settings, self.changelog_topic, self.group, self.topics, self.state_version,
                                        from_zero=settings.restore_from_zero)
        self.codec = StateCodec(self.view_type)
        self.loop = TimedLoop(
            settings, self.group, self.topics, stop=stop, on_assign=self.restore, on_revoke=self._on_revoke,
            poll_timeout=poll_seconds, commit_to_kafka=False, extra_config={"group.remote.assignor": "range"},
        )

    # ---------------------------------------------------------------- subclass API

    def initial_view(self, challenge_id: int) -> View:
        raise NotImplementedError

    def accepts(self, item: object) -> bool:
        raise NotImplementedError

    def apply(self, view: View, item: object) -> View:
        raise NotImplementedError

    def reconcile(self, challenge_id: int, view: View) -> None:
        """Act on one view (send, publish); may call `retry_later`."""
        raise NotImplementedError

    def before_reconcile(self) -> None:
        """Called once per pass (e.g. to read chain time)."""

    def partition_extra(self, partition: int) -> dict[str, Any]:
        """What the stage keeps besides its views (stored in the meta entry of each partition it commits)."""
        return {}

    def load_partition_extra(self, partition: int, extra: dict[str, Any]) -> None:
        return None

    # ---------------------------------------------------------------- folding

    @property
    def stop(self) -> StopFlag:
        return self.loop.stop

    def fold(self, partition: int, challenge_id: int, item: object) -> None:
        if not self.accepts(item):
            return
        view = self.views.get(challenge_id)
        if view is None:
            view = self.initial_view(challenge_id)
        self.views[challenge_id] = self.apply(view, item)
        self.partition_of[challenge_id] = partition
        self.changelog.changed(partition, f"v/{challenge_id}")

    def handle(self, batch: Sequence[Received], reject: Reject) -> None:
        processed: dict[tuple[str, int], int] = {}
        for received in batch:
            processed[(received.topic, received.partition)] = received.offset + 1
            try:
                read = read_input(received)
            except (ValueError, KeyError, TypeError) as exc:
                reject(received, f"{self.group}: unreadable {received.event.event_type}: {exc}")
                continue
            if read is not None:
                self.fold(received.partition, *read)
        self._commit(processed)

    def _commit(self, processed: Mapping[tuple[str, int], int]) -> None:
        """One transaction: the changed views, each touched partition's meta entry, the input offsets."""
        offsets = [TopicPartition(self.settings.topic(topic), p, self.changelog.advanced(topic, p, next_offset))
                   for (topic, p), next_offset in processed.items()]
        if not offsets and not self.changelog.pending:
            return
        self.changelog.write(self.state_producer, self._encode, self.partition_extra)
        self.state_producer.commit(offsets, self.loop.consumer.consumer_group_metadata())

    def _encode(self, _partition: int, key: str) -> bytes | None:
        view = self.views.get(int(key[2:]))
        return self.codec.encode(view) if view is not None else None

    def _keys(self, partition: int) -> Iterator[str]:
        return (f"v/{cid}" for cid, p in self.partition_of.items() if p == partition)

    def publish(self, challenge_id: int, event_type: str, payload: dict[str, Any], event_id: str,
                item: object | None = None) -> None:
        """Publish one event to lc.jobs (flushed: it is durable before anything else is sent) and fold
        its typed form into the view."""
        self.producer.publish(JOBS, str(challenge_id), event_type, payload, event_id=event_id)
        self.producer.flush()
        if item is not None:
            self.views[challenge_id] = self.apply(self.views[challenge_id], item)
            partition = self.partition_of.get(challenge_id)
            if partition is not None:
                self.changelog.changed(partition, f"v/{challenge_id}")
        log.info("%s: challenge %d %s %s", self.group, challenge_id, event_type,
                 {k: v for k, v in payload.items() if k not in ("job_id", "challenge_id")})

    # ---------------------------------------------------------------- acting

    def retry_later(self, challenge_id: int, delay: float) -> None:
        self.retry_at[challenge_id] = time.monotonic() + delay

    def reconcile_all(self) -> None:
        self.before_reconcile()
        now = time.monotonic()
        for challenge_id in sorted(self.views):
            if self.stop.is_set():
                return
            if self.retry_at.get(challenge_id, 0.0) > now or not self._caught_up(challenge_id):
                continue
            self.retry_at.pop(challenge_id, None)
            self.reconcile(challenge_id, self.views[challenge_id])

    def _caught_up(self, challenge_id: int) -> bool:
        """Whether every input partition of the challenge has been read to its end (the view is current)."""
        partition = self.partition_of.get(challenge_id)
        return partition is not None and all(self.loop.at_end.get((topic, partition), False) for topic in self.topics)

    def run(self, until: Callable[[], bool] | None = None) -> None:
        def tick() -> bool:
            self.reconcile_all()
            return until() if until is not None else False

        try:
            self.loop.run(self.handle, tick)
        finally:
            self.producer.close()
            self.state_producer.close()

    # ---------------------------------------------------------------- assignment

    def restore(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The assignment callback: restore the partitions' state; returns them positioned where to resume."""
        to_catalogue = self.loop.catalogue_topic
        plans = self.changelog.plan_assignment(self.loop.consumer, partitions, to_catalogue)
        entries = 0
        for plan in plans:
            if plan.values is not None:
                for key, value in plan.values.items():
                    challenge_id = int(key[2:])
                    self.views[challenge_id] = self.codec.decode(value)
                    self.partition_of[challenge_id] = plan.partition
                entries += len(plan.values)
                self.load_partition_extra(plan.partition, plan.extra)
        replayed = self._replay(plans)
        for plan in plans:
            self.changelog.assigned(plan, self._keys(plan.partition))
        self._commit({})  # a rebuilt partition's views, written whole
        self.restored = self.changelog.report(self.group, plans, entries, replayed)
        return self.changelog.resume_at(plans, partitions, to_catalogue)

    def _replay(self, plans: list[PartitionPlan]) -> int:
        """Fold the inputs of the plans' ranges while reading them (nothing is sent)."""
        reader = RangeReader(self.settings, {(topic, plan.partition): (plan.starts[topic], plan.ends[topic])
                                             for plan in plans for topic in self.topics}, self.group)
        count = 0
        for batch in reader.batches():
            for received, _timestamp in batch:
                try:
                    read = read_input(received)
                except (ValueError, KeyError, TypeError):
                    continue  # dead-lettered when it was first consumed
                if read is not None:
                    self.fold(received.partition, *read)
            count += len(batch)
        return count

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        lost = {tp.partition for tp in partitions}
        for tp in partitions:
            self.loop.at_end.pop((self.loop.catalogue_topic(tp.topic), tp.partition), None)
        for p in lost:
            self.changelog.forget(p)
        for challenge_id in [c for c, p in self.partition_of.items() if p in lost]:
            self.views.pop(challenge_id, None)
            self.partition_of.pop(challenge_id, None)
            self.retry_at.pop(challenge_id, None)
