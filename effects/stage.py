"""What the chain writers share: per-challenge views folded from co-partitioned topics, kept in the
stage's changelog topic, and a reconcile pass after every poll that acts on the views.

After each batch one Kafka transaction writes the views it changed to the changelog (`v/<challenge>`
-> the view, statecodec JSON) with the batch's input offsets, dead letters included
(eventlog/processing/changelog.py). On assignment a partition's views are loaded from the changelog
and the inputs are folded from the offsets they cover up to the group's position (nothing is sent
while restoring); without a usable changelog they are folded from offset 0 and written whole. The
reconcile pass then does what the views say is missing, checking the chain first. Events the stage
publishes are folded into its views at once, and their redelivery (they come back on lc.jobs) is a
no-op: every fold is idempotent.

Acting: the reconcile pass runs on the consumer thread and decides; the chain work it decides on runs
inline (`concurrency` 1) or on a pool of `concurrency` threads, at most one piece of work per
challenge at a time. Only the consumer thread writes the changelog: a view the work changed is
written in the first commit after the work has finished (a view an input changed meanwhile is written
with that input's offset, as it is then). A partition is given up only after the work of its
challenges has finished and its views are committed, so the instance that takes it over never
overlaps with it (the one-request-per-job guarantee, with the chain checks the work starts with).
Stages that read chain time (`uses_chain_time`) get the newest confirmed block time of
lc.chain.blocks in `chain_time`, never the wall clock; each partition's meta entry holds it with the
place in lc.chain.blocks it was read to, and a restart reads the blocks from the newest place stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from typing import Any, Generic, TypeVar

from confluent_kafka import TopicPartition

from effects.chain import ChainWriter
from effects.inputs import read_input
from effects.settings import WriterSettings
from eventlog import metrics
from eventlog.admission import halt_at
from eventlog.config import redact_url
from eventlog.consumer import Received, Reject, StopFlag
from eventlog.processing.changelog import PartitionPlan, Restored, StageChangelog
from eventlog.processing.clock import BlockClock
from eventlog.processing.loop import TimedLoop
from eventlog.processing.restore import RangeReader
from eventlog.processing.stage import TRANSACTIONS, instance_transactional_id
from eventlog.processing.statecodec import StateCodec
from eventlog.producer import EventProducer, close_quietly
from eventlog.topics import JOBS, ordered_facts

log = logging.getLogger(__name__)

View = TypeVar("View")
UNREADABLE = (ValueError, KeyError, TypeError)  # what `read_input` raises for an input it cannot read


class ViewStage(Generic[View]):
    """Subclasses give `view_type`, `initial_view`, `accepts`, `apply` and `reconcile`."""

    group: str = ""
    topics: tuple[str, ...] = ()
    changelog_topic: str = ""
    view_type: type[View]
    state_version: int = 1  # bump when a stored view can no longer be read as the view (statecodec)
    uses_chain_time: bool = False

    def __init__(self, settings: WriterSettings, *, stop: StopFlag | None = None, poll_seconds: float = 0.2,
                 concurrency: int = 1) -> None:
        self.settings = settings
        self.views: dict[int, View] = {}
        self.partition_of: dict[int, int] = {}
        self.retry_at: dict[int, float] = {}  # challenge id -> monotonic time of its next try
        self.concurrency = max(1, concurrency)
        self.in_flight: dict[int, Future[None]] = {}  # challenge id -> its work on the pool
        self._executor: ThreadPoolExecutor | None = None
        # views, partition_of, retry_at and _worked: the consumer thread and the pool
        self._lock = threading.RLock()
        self._worked: set[int] = set()  # challenges whose views the work changed since the last commit
        self.clock = BlockClock(settings, self.group) if self.uses_chain_time else None
        self.chain_time: int | None = None  # newest confirmed block time (chain time), never the wall clock
        self._blocks_from = 0  # where the clock starts reading: 0 unless a restored partition read further
        self.restored: Restored | None = None
        self.producer = EventProducer(settings, self.group)  # what the stage reports, each flushed at once
        self.state_producer = EventProducer(settings, f"{self.group}-state",
                                            transactional_id=instance_transactional_id(self.group),
                                            extra_config=TRANSACTIONS, fence_on_start=False)
        self.changelog = StageChangelog(settings, self.changelog_topic, self.group, self.topics, self.state_version,
                                        from_zero=settings.restore_from_zero)
        self.codec = StateCodec(self.view_type)
        self.loop = TimedLoop(
            settings, self.group, self.topics, stop=stop, on_assign=self.restore, on_revoke=self._on_revoke,
            on_reset=self._reset, poll_timeout=poll_seconds, commit_to_kafka=False,
            extra_config={"group.remote.assignor": "range"},
        )

    # ---------------------------------------------------------------- subclass API

    def initial_view(self, challenge_id: int) -> View:
        raise NotImplementedError

    def accepts(self, item: object) -> bool:
        raise NotImplementedError

    def apply(self, view: View, item: object) -> View:
        raise NotImplementedError

    def reconcile(self, challenge_id: int, view: View) -> None:
        """Decide for one view; send and publish through `act` (or directly when concurrency is 1);
        may call `retry_later`."""
        raise NotImplementedError

    def before_reconcile(self) -> None:
        """Called once per pass, after chain time was read."""

    # ---------------------------------------------------------------- folding

    @property
    def stop(self) -> StopFlag:
        return self.loop.stop

    def fold(self, partition: int, challenge_id: int, item: object) -> None:
        if not self.accepts(item):
            return
        with self._lock:
            view = self.views.get(challenge_id)
            if view is None:
                view = self.initial_view(challenge_id)
            self.views[challenge_id] = self.apply(view, item)
            self.partition_of[challenge_id] = partition
        self.changelog.changed(partition, f"v/{challenge_id}")

    def handle(self, batch: Sequence[Received], reject: Reject) -> None:
        for received in batch:
            try:
                read = read_input(received)
            except UNREADABLE as exc:
                reject(received, f"{self.group}: unreadable {received.event.event_type}: {exc}")
                continue
            if read is not None:
                self.fold(received.partition, *read)
        self._commit(self.loop.batch_positions)  # (the positions count the batch's dead letters too)

    def view(self, challenge_id: int) -> View:
        with self._lock:
            return self.views[challenge_id]

    def publish(self, challenge_id: int, event_type: str, payload: dict[str, Any], event_id: str,
                item: object | None = None, *, topic: str = JOBS) -> None:
        """Publish one event (flushed: it is durable before anything else is sent) and fold its typed
        form into the view."""
        self.producer.publish(topic, str(challenge_id), event_type, payload, event_id=event_id)
        self.producer.flush()
        if item is not None:
            with self._lock:
                self.views[challenge_id] = self.apply(self.views[challenge_id], item)
                self._worked.add(challenge_id)
        log.info("%s: challenge %d %s %s", self.group, challenge_id, event_type,
                 {k: v for k, v in payload.items() if k not in ("job_id", "challenge_id")})

    # ---------------------------------------------------------------- the changelog (consumer thread)

    def _commit(self, processed: Mapping[tuple[str, int], int]) -> None:
        """One transaction: the changed views, each touched partition's meta entry, the input offsets."""
        self._mark_finished_work()
        offsets = [TopicPartition(self.settings.topic(topic), p, self.changelog.advanced(topic, p, next_offset))
                   for (topic, p), next_offset in processed.items()]
        if not offsets and not self.changelog.pending:
            return
        self.changelog.write(self.state_producer, self._encode, self._meta_extra)
        self.state_producer.commit(offsets, self.loop.consumer.consumer_group_metadata())

    def _mark_finished_work(self) -> None:
        """The views changed by work that is no longer running go into this commit (the events the work
        published come back as inputs, and their folds write the view with their offsets anyway)."""
        with self._lock:
            finished = {c for c in self._worked if c not in self.in_flight or self.in_flight[c].done()}
            self._worked -= finished
            owned = [(self.partition_of[c], c) for c in finished if c in self.partition_of]
        for partition, challenge_id in owned:
            self.changelog.changed(partition, f"v/{challenge_id}")

    def _encode(self, _partition: int, key: str) -> bytes | None:
        with self._lock:
            view = self.views.get(int(key[2:]))  # (a view is immutable: encoded outside the lock)
        return self.codec.encode(view) if view is not None else None

    def _keys(self, partition: int) -> Iterator[str]:
        with self._lock:
            return iter([f"v/{cid}" for cid, p in self.partition_of.items() if p == partition])

    # chain time is the same for every partition: each partition's meta entry holds it with the place in
    # lc.chain.blocks it was read to, and a restart reads the blocks from the newest place stored

    def _meta_extra(self, _partition: int) -> dict[str, Any]:
        if self.clock is None:
            return {}
        return {"chain_time": self.chain_time, "block_offset": max(self._blocks_from, self.clock.next_offset)}

    def _load_extra(self, extra: dict[str, Any]) -> None:
        stored, offset = extra.get("chain_time"), extra.get("block_offset")
        if stored is not None:
            self.chain_time = stored if self.chain_time is None else max(self.chain_time, stored)
        if offset is not None:
            self._blocks_from = max(self._blocks_from, int(offset))

    # ---------------------------------------------------------------- acting

    def retry_later(self, challenge_id: int, delay: float) -> None:
        with self._lock:
            self.retry_at[challenge_id] = time.monotonic() + delay

    def retry_now(self, challenge_id: int) -> None:
        with self._lock:
            self.retry_at.pop(challenge_id, None)

    def act(self, challenge_id: int, work: Callable[[], None]) -> bool:
        """Run one challenge's chain work: inline with concurrency 1, else on the pool when a slot is
        free (False: no slot now, the next pass decides again)."""
        if self.concurrency == 1:
            work()
            return True
        if challenge_id in self.in_flight or len(self.in_flight) >= self.concurrency:
            return False
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix=self.group)
        self.in_flight[challenge_id] = self._executor.submit(self._guarded, challenge_id, work)
        return True

    def _guarded(self, challenge_id: int, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:  # the work reports its own failures; this is a bug: keep the stage alive
            log.exception("%s: challenge %d: unexpected error; retrying later", self.group, challenge_id)
            self.retry_later(challenge_id, self.settings.writer_backoff_max_seconds)

    def _reap(self) -> None:
        for challenge_id in [c for c, f in self.in_flight.items() if f.done()]:
            self.in_flight.pop(challenge_id)

    def _read_chain_time(self) -> None:
        if self.clock is None:
            return
        self.clock.poll()
        for entry in self.clock.blocks:
            stamp = entry.item.timestamp
            self.chain_time = stamp if self.chain_time is None else max(self.chain_time, stamp)
        self.clock.trim(len(self.clock.blocks))  # only the newest time matters here; do not keep every header

    def reconcile_all(self) -> None:
        self._reap()
        self._read_chain_time()
        self.before_reconcile()
        now = time.monotonic()
        with self._lock:
            ready = [(c, self.views[c]) for c in sorted(self.views)
                     if self.retry_at.get(c, 0.0) <= now and c not in self.in_flight and self._caught_up(c)]
        for challenge_id, view in ready:
            if self.stop.is_set():
                return
            self.retry_now(challenge_id)
            self.reconcile(challenge_id, view)

    def _caught_up(self, challenge_id: int) -> bool:
        """Whether every input partition of the challenge has been read to its end (the view is current)."""
        partition = self.partition_of.get(challenge_id)
        return partition is not None and all(self.loop.at_end.get((topic, partition), False) for topic in self.topics)

    def _finish_in_flight(self, challenge_ids: Sequence[int] | None = None) -> None:
        """Wait for the pool's work (of these challenges, or all of it)."""
        chosen = list(self.in_flight) if challenge_ids is None else [c for c in challenge_ids if c in self.in_flight]
        futures = [self.in_flight.pop(c) for c in chosen]
        if futures:
            log.info("%s: waiting for the chain work of %d challenge(s) to finish", self.group, len(futures))
            wait_all(futures)

    def run(self, until: Callable[[], bool] | None = None) -> None:
        def tick() -> bool:
            self.reconcile_all()
            return until() if until is not None else False

        self.announce_chain()
        try:
            self.loop.run(self.handle, tick)  # (its close revokes the partitions: work finished, views committed)
        except BaseException:
            self._end()
            close_quietly(self.producer)
            close_quietly(self.state_producer)
            raise
        self._end()
        self.producer.close()
        self.state_producer.close()

    def _end(self) -> None:
        self._finish_in_flight()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self.clock is not None:
            self.clock.close()

    def announce_chain(self) -> None:
        """Say at start whether the chain node answers (a writer otherwise says nothing until it has work),
        and serve the wallet's balance as a metric."""
        chain = getattr(self, "chain", None)
        if not isinstance(chain, ChainWriter):  # a writer without a chain (unconfigured), or a test's stand-in
            return
        problem = chain.node_problem()
        if problem is not None:
            log.error("%s: the chain node at %s does not answer (%s); transactions wait and are retried until it "
                      "does: check the node and LC_RPC_URL", self.group, redact_url(chain.rpc_url),
                      self.settings.scrub(problem))
        else:
            log.info("%s: chain node at %s answers; wallet %s", self.group, redact_url(chain.rpc_url), chain.address)
        metrics.WALLET_BALANCE.set_source(chain.address, lambda: [((chain.address,), chain.balance())])

    # ---------------------------------------------------------------- assignment

    def restore(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The assignment callback: restore the partitions' state; returns them positioned where to resume."""
        to_catalogue = self.loop.catalogue_topic
        plans = self.changelog.plan_assignment(self.loop.consumer, partitions, to_catalogue)
        entries = 0
        try:
            for plan in plans:
                if plan.values is not None:
                    for key, value in plan.values.items():
                        challenge_id = int(key[2:])
                        view = self.codec.decode(value)
                        with self._lock:
                            self.views[challenge_id] = view
                            self.partition_of[challenge_id] = plan.partition
                    entries += len(plan.values)
                    self._load_extra(plan.extra)
            replayed = self._replay(plans)
        except BaseException:
            # (a halt, a broker error): nothing of a half-restored partition may reach a commit
            self._drop({plan.partition for plan in plans})
            raise
        for plan in plans:
            self.changelog.assigned(plan, self._keys(plan.partition))
        if self.clock is not None and self.clock.base is None:
            self.clock.start(self._blocks_from, self.stop)  # chain time from the newest place a partition stored
        self._commit({})  # a rebuilt partition's views, written whole
        self.restored = self.changelog.report(self.group, plans, entries, replayed)
        return self.changelog.resume_at(plans, partitions, to_catalogue)

    def _replay(self, plans: list[PartitionPlan]) -> int:
        """Fold the inputs of the plans' ranges while reading them (nothing is sent)."""
        reader = RangeReader(self.settings, {(topic, plan.partition): (plan.starts[topic], plan.ends[topic])
                                             for plan in plans for topic in self.topics}, self.group)
        count = 0
        for batch in reader.batches():
            for received in batch:
                try:
                    read = read_input(received)
                except UNREADABLE as exc:
                    if ordered_facts(received.topic):  # it halted the stage when it was first consumed
                        raise halt_at(received.topic, received.partition, received.offset,
                                      f"{self.group}: unreadable {received.event.event_type}: {exc}") from None
                    continue  # dead-lettered when it was first consumed
                if read is not None:
                    self.fold(received.partition, *read)
            count += len(batch)
        return count

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        lost = {tp.partition for tp in partitions}
        for tp in partitions:
            self.loop.at_end.pop((self.loop.catalogue_topic(tp.topic), tp.partition), None)
        with self._lock:
            leaving = [c for c, p in self.partition_of.items() if p in lost]
        self._finish_in_flight(leaving)  # the next owner must not overlap with work still running here
        self._commit({})  # ... and restores the views that work left
        self._drop(lost)

    def _reset(self) -> None:
        """After an aborted transaction (eventlog/processing/loop.py): the chain work finishes (what it published
        comes back as input), then every view is forgotten; the loop restores them from what was committed."""
        self._finish_in_flight()
        with self._lock:
            held = set(self.partition_of.values())
        self._drop(held | {tp.partition for tp in self.loop.consumer.assignment()})

    def _drop(self, partitions: set[int]) -> None:
        for p in partitions:
            self.changelog.forget(p)
        with self._lock:
            for challenge_id in [c for c, p in self.partition_of.items() if p in partitions]:
                self.views.pop(challenge_id, None)
                self.partition_of.pop(challenge_id, None)
                self.retry_at.pop(challenge_id, None)
                self._worked.discard(challenge_id)
