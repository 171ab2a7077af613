"""The consumer loop the stateful stages share: `ConsumerLoop` reporting whether each partition has been
read to its end (`at_end`, for the timestamp-ordered merge; each `Received` carries its Kafka
timestamp), and their recovery from an aborted transaction.

A stage commits its outputs, its changelog entries and its input offsets in one Kafka transaction. When
that transaction fails without the producer being lost (a message not delivered in time while a node's
partitions move to another leader, an abortable error of the coordinator: `TransactionAborted`, raised
after the producer aborted it), the stage does not exit: as Kafka Streams does for a corrupted task,
the loop has it drop the state of every partition it holds (that state may hold effects of the aborted
transaction), restores them from the changelog and the committed offsets (the assignment callback), and
seeks the consumer back to where they resume; the aborted work is then done again, once. A fatal
error (a fenced producer) still ends the stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from eventlog.consumer import BatchHandler, ConsumerLoop
from eventlog.producer import TransactionAborted, kafka_error

log = logging.getLogger(__name__)

RECOVERY_RETRY_SECONDS = 1.0


class TimedLoop(ConsumerLoop):
    def __init__(self, *args: Any, on_reset: Callable[[], None] | None = None, **kwargs: Any) -> None:
        """`on_reset`: drop the state of every partition the stage holds, committing nothing (after an
        aborted transaction; `on_assign` then restores the assigned partitions)."""
        extra = {"enable.partition.eof": True, **(kwargs.pop("extra_config", None) or {})}
        super().__init__(*args, extra_config=extra, **kwargs)
        self._on_reset = on_reset
        self._aborted: TransactionAborted | None = None  # a failure the stage has not recovered from yet
        self.recoveries = 0  # (read by tests)

    def run(self, handle: BatchHandler, until: Callable[[], bool] | None = None) -> None:
        def tick() -> bool:
            if self._recovered():
                try:
                    return until() if until is not None else False
                except TransactionAborted as exc:
                    self._failed(exc)
            return False

        super().run(handle, tick)

    def process(self, messages: list[Message], handle: BatchHandler) -> None:
        if not self._recovered():
            return  # fetched before the partitions were sought back: they are read again
        try:
            super().process(messages, handle)
        except TransactionAborted as exc:
            self._failed(exc)

    # --- an aborted transaction -------------------------------------------------------------------

    def _failed(self, exc: TransactionAborted) -> None:
        if self._on_reset is None or self._user_on_assign is None:
            raise exc  # a loop without a way to restore its state cannot go on
        log.warning("%s: %s; restoring the partitions from the changelog and the committed offsets",
                    self.group_id, exc)
        self._aborted = exc
        self._recovered()

    def _recovered(self) -> bool:
        """Recover from a pending aborted transaction (unless stopping); False while one is pending."""
        while self._aborted is not None and not self.stop.is_set():
            assert self._on_reset is not None and self._user_on_assign is not None
            partitions = self.consumer.assignment()
            try:
                self._on_reset()
                self.at_end.clear()  # known again once each partition is read to its end from where it resumes
                positioned = self._user_on_assign(partitions) or partitions
                for tp in positioned:
                    self.consumer.seek(tp)  # messages fetched before are dropped; the end is reported again
            except TransactionAborted as exc:  # (restore writes a rebuilt partition whole)
                log.warning("%s: %s while restoring; again", self.group_id, exc)
                self._aborted = exc
            except KafkaException as exc:  # the cluster is still moving (a coordinator, a leader): wait for it
                error = kafka_error(exc)
                if error is None or not (error.retriable() or error.code() == KafkaError._TIMED_OUT):
                    raise
                log.warning("%s: restoring after an aborted transaction: %s; again in %.0f s", self.group_id,
                            error.str(), RECOVERY_RETRY_SECONDS)
                self.stop.wait(RECOVERY_RETRY_SECONDS)
            else:
                self._aborted = None
                self.recoveries += 1
                log.info("%s: partitions %s restored after the aborted transaction; their inputs are processed "
                         "again from the committed offsets", self.group_id, sorted({tp.partition for tp in positioned}))
        return self._aborted is None

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._aborted is not None:  # the partitions held are restored with the new ones
            consumer.incremental_assign(partitions)
            return
        try:
            super()._on_assign(consumer, partitions)
        except TransactionAborted as exc:  # (restore commits what the partitions held first)
            consumer.incremental_assign(partitions)
            self._failed_in_callback(exc)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._aborted is not None and self._on_reset is not None:
            self._on_reset()  # nothing the state holds may be committed; the new owner restores what was
            consumer.incremental_unassign(partitions)
            return
        try:
            super()._on_revoke(consumer, partitions)
        except TransactionAborted as exc:  # the commit of what they held: their new owner does it again
            consumer.incremental_unassign(partitions)
            self._failed_in_callback(exc)

    def _failed_in_callback(self, exc: TransactionAborted) -> None:
        """Noted in a rebalance callback; recovered from after the poll that ran it (no seek in a callback)."""
        if self._on_reset is None or self._user_on_assign is None:
            raise exc
        log.warning("%s: %s during a rebalance; restoring the partitions after it", self.group_id, exc)
        self._aborted = exc
