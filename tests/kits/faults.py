"""Failures injected into a stage's transactional producer (no tests here): a delivery report with
"Local: Message timed out" for the n-th changelog message (what a partition leader lost with its node
gives after message.timeout.ms), "abortable" answered by the n-th commit_transaction (the broker's
answer when a transaction cannot commit), and a fatal error answered by the n-th commit_transaction (what
librdkafka can answer after a failover, its issue 4849), a retriable error answered at once by the n-th
send_offsets_to_transaction (a coordinator moving), and a send_offsets_to_transaction that waits out its
timeout on every call from the n-th on (librdkafka waiting for a group coordinator that is gone, its
issues 5511 and 5456). The real transaction is then aborted by the stage, or by the initialisation of
the producer that replaces a lost one."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from eventlog.producer import EventProducer


class Undelivered:
    """What a delivery report names (`topic()`, `partition()`)."""

    def __init__(self, topic: str, partition: int) -> None:
        self._topic, self._partition = topic, partition

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition


class FailingProducer:
    """A librdkafka producer that fails the n-th changelog message it is given (1-based, counted over the
    stage's life), the n-th commit_transaction and send_offsets_to_transaction calls as asked; everything
    else goes to the real producer."""

    def __init__(self, inner: Any, *, report: Any, state_topic: str, undelivered: set[int], commits: set[int],
                 fatal_commits: set[int], retried_offsets: set[int], stuck_offsets_from: int | None) -> None:
        self.inner = inner
        self.report = report  # the delivery callback of the producer's config
        self.state_topic = state_topic
        self.undelivered, self.failing_commits, self.fatal_commits = undelivered, commits, fatal_commits
        self.retried_offsets, self.stuck_offsets_from = retried_offsets, stuck_offsets_from
        self.state_messages = self.commits = self.offsets_sent = 0
        self.fired: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def produce(self, topic: str, *args: Any) -> None:
        """(topic, value, key, partition, ...), as `EventProducer` calls it."""
        self.inner.produce(topic, *args)
        if topic == self.state_topic:
            self.state_messages += 1
            if self.state_messages in self.undelivered:
                self.fired.append(f"undelivered {self.state_messages}")
                self.report(KafkaError(KafkaError._MSG_TIMED_OUT), Undelivered(topic, args[2]))

    def send_offsets_to_transaction(self, offsets: Any, group_metadata: Any, timeout: float) -> None:
        self.offsets_sent += 1
        if self.offsets_sent in self.retried_offsets:
            self.fired.append(f"retried offsets {self.offsets_sent}")
            raise KafkaException(KafkaError(KafkaError.COORDINATOR_NOT_AVAILABLE, "injected: coordinator not available",
                                            retriable=True))
        if self.stuck_offsets_from is not None and self.offsets_sent >= self.stuck_offsets_from:
            self.fired.append(f"stuck offsets {self.offsets_sent}")
            time.sleep(timeout)
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "injected: send_offsets_to_transaction timed out",
                                            retriable=True))
        self.inner.send_offsets_to_transaction(offsets, group_metadata, timeout)

    def commit_transaction(self, *args: Any) -> None:
        self.commits += 1
        if self.commits in self.failing_commits:
            self.fired.append(f"commit {self.commits}")
            raise KafkaException(KafkaError(KafkaError.INVALID_TXN_STATE, "injected: the transaction cannot commit",
                                            txn_requires_abort=True))
        if self.commits in self.fatal_commits:
            self.fired.append(f"fatal {self.commits}")
            raise KafkaException(KafkaError(KafkaError.INVALID_TXN_STATE, "injected: Failed to end transaction",
                                            fatal=True))
        self.inner.commit_transaction(*args)


def failing(producer: EventProducer, state_topic: str, *, undelivered: set[int], commits: set[int],
            fatal_commits: Collection[int] = (), retried_offsets: Collection[int] = (),
            stuck_offsets_from: int | None = None) -> FailingProducer:
    """Inject failures into a stage's transactional producer (`state_topic`: the physical changelog topic).
    A fatal error replaces the librdkafka producer: what follows it is not counted or failed."""
    faults = FailingProducer(producer._producer, report=producer._on_delivery, state_topic=state_topic, undelivered=undelivered, commits=commits,
                             fatal_commits=set(fatal_commits), retried_offsets=set(retried_offsets),
                             stuck_offsets_from=stuck_offsets_from)
    producer._producer = faults  # type: ignore[assignment]
    return faults
