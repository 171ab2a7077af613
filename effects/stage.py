"""What the chain writers share: per-challenge views folded from co-partitioned topics, restored from
the topics on assignment, and a reconcile pass after every poll that acts on the views.

State lives only in the topics: on assignment a partition's history up to the group's committed
position is folded again (nothing is sent while restoring); the reconcile pass then does what the
views say is missing, checking the chain first. Events the stage publishes are folded into its views
at once, and their redelivery is a no-op (deterministic ids).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from confluent_kafka import TopicPartition

from effects.chain import ChainWriter
from effects.inputs import read_input
from effects.settings import WriterSettings
from eventlog import metrics
from eventlog.config import redact_url
from eventlog.consumer import Received, Reject, StopFlag
from eventlog.processing.loop import TimedLoop
from eventlog.processing.restore import committed_positions, read_up_to
from eventlog.producer import EventProducer
from eventlog.topics import JOBS

log = logging.getLogger(__name__)

View = TypeVar("View")


class ViewStage(Generic[View]):
    """Subclasses give `initial_view`, `accepts`, `apply` and `reconcile`."""

    group: str = ""
    topics: tuple[str, ...] = ()

    def __init__(self, settings: WriterSettings, *, stop: StopFlag | None = None, poll_seconds: float = 0.2) -> None:
        self.settings = settings
        self.views: dict[int, View] = {}
        self.partition_of: dict[int, int] = {}
        self.retry_at: dict[int, float] = {}  # challenge id -> monotonic time of its next try
        self.producer = EventProducer(settings, self.group)
        self.loop = TimedLoop(
            settings, self.group, self.topics, stop=stop, on_assign=self._on_assign, on_revoke=self._on_revoke,
            poll_timeout=poll_seconds, extra_config={"group.remote.assignor": "range"},
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

    def handle(self, batch: Sequence[Received], reject: Reject) -> None:
        for received in batch:
            try:
                read = read_input(received)
            except (ValueError, KeyError, TypeError) as exc:
                reject(received, f"{self.group}: unreadable {received.event.event_type}: {exc}")
                continue
            if read is not None:
                self.fold(received.partition, *read)

    def publish(self, challenge_id: int, event_type: str, payload: dict[str, Any], event_id: str,
                item: object | None = None) -> None:
        """Publish one event to lc.jobs (flushed: it is durable before anything else is sent) and fold
        its typed form into the view."""
        self.producer.publish(JOBS, str(challenge_id), event_type, payload, event_id=event_id)
        self.producer.flush()
        if item is not None:
            self.views[challenge_id] = self.apply(self.views[challenge_id], item)
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

        self.announce_chain()
        try:
            self.loop.run(self.handle, tick)
        finally:
            self.producer.close()

    def announce_chain(self) -> None:
        """Say at start whether the chain node answers (a writer otherwise says nothing until it has work),
        and serve the wallet's balance as a metric."""
        chain: ChainWriter | None = getattr(self, "chain", None)
        if chain is None:
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

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        restored = 0
        ends = committed_positions(self.loop.consumer, partitions)
        for received, _timestamp in read_up_to(self.settings, ends, self.loop.catalogue_topic, self.group):
            try:
                read = read_input(received)
            except (ValueError, KeyError, TypeError):
                continue  # dead-lettered when it was first consumed
            if read is not None:
                self.fold(received.partition, *read)
                restored += 1
        log.info("%s restored %d input events for %d partitions", self.group, restored, len(partitions))

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        lost = {tp.partition for tp in partitions}
        for tp in partitions:
            self.loop.at_end.pop((self.loop.catalogue_topic(tp.topic), tp.partition), None)
        for challenge_id in [c for c, p in self.partition_of.items() if p in lost]:
            self.views.pop(challenge_id, None)
            self.partition_of.pop(challenge_id, None)
            self.retry_at.pop(challenge_id, None)
