"""The one consumer loop: batches, admit, handle, then commit; bad input to lc.dlq; clean shutdown.

Offsets are committed only after the handler returned for the whole batch (at least once). A
message the loop cannot admit (no key, undecodable, an event type its topic does not carry:
`eventlog.admission`), or that the handler refuses through its `reject` callback, goes to `lc.dlq`
with the reason, its origin (topic, partition, offset) and a bounded excerpt of its bytes (flushed
before the handler carries on, so a crash can only repeat a dead letter, never lose one), and the
loop keeps running; its offset is committed with the batch like any other. On an ordered chain-fact
topic such a message halts the stage instead (`StageHalted`, logged CRITICAL): the messages before
it are handled and committed, nothing from it on. Any other exception from the handler stops the
loop without committing: ordered facts must not be skipped.

`batch_positions` holds, while a batch is handled, the next offset of every (catalogue topic,
partition) the batch read, dead letters included: the offsets a stage that stores its own (the
projector, the merged stages) must store for the batch. With `enable.partition.eof`, `at_end` tells
whether each partition has been read to its end, as of the batch being handled.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from eventlog import metrics
from eventlog.admission import Inadmissible, StageHalted, admit, halt_at, halts_logged
from eventlog.config import CoreSettings
from eventlog.failures import ClientNoise, OperatorError
from eventlog.producer import EventProducer
from eventlog.serde import Event, EventSerde
from eventlog.topics import ordered_facts

log = logging.getLogger(__name__)


class Received(NamedTuple):
    """One decoded message and where it came from (`topic` is the catalogue name, without prefix)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    event: Event
    raw: bytes
    timestamp: int  # the message's Kafka timestamp, epoch ms


Reject = Callable[[Received, str], None]
BatchHandler = Callable[[Sequence[Received], Reject], None]
AssignCallback = Callable[[list[TopicPartition]], list[TopicPartition] | None]
RevokeCallback = Callable[[list[TopicPartition]], None]


LAG_REPORT_SECONDS = 5.0
MISSING_TOPICS_GRACE_S = 5.0  # how long a stage starting looks for an input topic before it gives up


class MissingTopics(OperatorError):
    """Topics a stage reads do not exist (never created, or a wrong LC_TOPIC_PREFIX)."""


class StopFlag:
    """Set by SIGTERM/SIGINT (when installed) or by `set()`; the loop ends after its current batch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self, *_: object) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)

    def install_signal_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.set)
            signal.signal(signal.SIGINT, self.set)


class ConsumerLoop:
    def __init__(
        self,
        settings: CoreSettings,
        group_id: str,
        topics: Sequence[str],
        *,
        stop: StopFlag | None = None,
        on_assign: AssignCallback | None = None,
        on_revoke: RevokeCallback | None = None,
        batch_size: int = 1000,
        poll_timeout: float = 0.5,
        commit_to_kafka: bool = True,
        dlq: EventProducer | None = None,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.group_id = group_id
        self.topics = list(topics)
        self.stop = stop or StopFlag()
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.commit_to_kafka = commit_to_kafka
        self.serde = EventSerde(settings.schema_registry_url)
        self._dlq = dlq
        self._user_on_assign = on_assign
        self._user_on_revoke = on_revoke
        self._physical_to_catalogue = {settings.topic(t): t for t in self.topics}
        self._noise = ClientNoise(settings.kafka_bootstrap, group_id)
        self.batch_positions: dict[tuple[str, int], int] = {}
        self.at_end: dict[tuple[str, int], bool] = {}  # (catalogue topic, partition) -> read to its end
        config: dict[str, Any] = {
            "bootstrap.servers": settings.kafka_bootstrap,
            **self._noise.config(),
            "group.id": f"{settings.topic_prefix}{group_id}",
            "group.protocol": "consumer",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
        config.update(extra_config or {})
        self.consumer = Consumer(config)
        self._batches = metrics.BatchTimer(group_id)
        self._lag_reported_at = 0.0

    def positions(self) -> dict[tuple[str, int], int]:
        """Next offset to be consumed per assigned (catalogue topic, partition); <0 = not yet known."""
        assigned = self.consumer.position(self.consumer.assignment())
        return {(self.catalogue_topic(tp.topic), tp.partition): tp.offset for tp in assigned}

    def catalogue_topic(self, physical_topic: str) -> str:
        """`t1.lc.evidence` -> `lc.evidence` (the catalogue name, without the settings' prefix)."""
        return self._physical_to_catalogue.get(physical_topic, physical_topic)

    @property
    def dlq(self) -> EventProducer:
        if self._dlq is None:
            self._dlq = EventProducer(self.settings, f"{self.group_id}-dlq")
        return self._dlq

    def run(self, handle: BatchHandler, until: Callable[[], bool] | None = None) -> None:
        """Consume until stopped (or until `until()` holds after a poll), then leave the group."""
        self.require_topics()
        self.consumer.subscribe(
            list(self._physical_to_catalogue), on_assign=self._on_assign, on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        try:
            with halts_logged(self.group_id):
                while not self.stop.is_set():
                    messages = self.consumer.consume(self.batch_size, self.poll_timeout)
                    if messages:
                        self.process(messages, handle)
                    self._report_lag()
                    if until is not None and until():
                        break
        finally:
            self.close()

    def require_topics(self, also: Sequence[str] = (), timeout: float = 5.0) -> None:
        """Raise MissingTopics (one line: which, and what to do) unless every input topic (and the catalogue
        topics `also`) exists. A topic missing at first is looked for again for MISSING_TOPICS_GRACE_S: a
        broker applies a new topic a moment after the controller created it, and one of several brokers
        can lag the one `lc topics create` asked."""
        wanted = [*self._physical_to_catalogue, *(self.settings.topic(t) for t in also)]
        deadline = time.monotonic() + MISSING_TOPICS_GRACE_S
        while True:
            present = self._topics(timeout)
            if present is None:  # stopped while the broker was unreachable
                return
            missing = [t for t in wanted if t not in present or present[t].error is not None]
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise MissingTopics(
                    f"{self.group_id}: topic(s) {', '.join(missing)} do not exist on Kafka at "
                    f"{self.settings.kafka_bootstrap} (LC_TOPIC_PREFIX={self.settings.topic_prefix!r}); create "
                    "them with `lc topics create` or fix the prefix")
            if self.stop.wait(0.5):
                return

    def _topics(self, timeout: float) -> dict[str, Any] | None:
        """The cluster's topics; an unreachable broker is transient: waited for (ClientNoise reports it)
        unless the stage is stopped (None)."""
        while True:
            try:
                return self.consumer.list_topics(timeout=timeout).topics
            except KafkaException as exc:
                self._noise.report(exc.args[0].code(), exc.args[0].str())
                if self.stop.wait(1.0):
                    return None

    def _report_lag(self) -> None:
        """Every few seconds: messages between the position and the end of each assigned partition, from
        the high watermarks the fetches brought (no request to the broker)."""
        now = time.monotonic()
        if now - self._lag_reported_at < LAG_REPORT_SECONDS:
            return
        self._lag_reported_at = now
        for tp in self.consumer.position(self.consumer.assignment()):
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if tp.offset >= 0 and high >= 0:
                metrics.CONSUMER_LAG.labels(self.group_id, self.catalogue_topic(tp.topic), str(tp.partition)).set(
                    max(high - tp.offset, 0))

    def process(self, messages: list[Message], handle: BatchHandler) -> None:
        started = time.perf_counter()
        newest = 0
        received: list[Received] = []
        self.batch_positions = {}
        refused = 0
        halted: StageHalted | None = None
        ends: dict[tuple[str, int], int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    ends[(self.catalogue_topic(message.topic()), message.partition())] = message.offset()
                    continue
                raise KafkaException(error)
            topic, partition, offset = self.catalogue_topic(message.topic()), message.partition(), message.offset()
            try:
                key, event = admit(self.serde, topic, message.key(), message.value())
            except Inadmissible as exc:
                if ordered_facts(topic):
                    halted = halt_at(topic, partition, offset, str(exc))
                    break  # the messages before it are still handled and committed
                self._dead_letter(message.topic(), partition, offset, message.key(), message.value(), str(exc))
                refused += 1
            else:
                timestamp = message.timestamp()[1]
                received.append(Received(topic, partition, offset, key, event, message.value(), timestamp))
                newest = max(newest, timestamp)
            self.batch_positions[(topic, partition)] = offset + 1
        if refused:
            self.dlq.flush()
        for key in self.batch_positions:
            self.at_end[key] = False
        for key, end in ends.items():  # (an end reported before later messages of the batch is behind them)
            self.at_end[key] = end >= self.batch_positions.get(key, end)
        if self.batch_positions:  # a batch of end-of-partition events only has nothing to handle or commit
            handle(received, self.reject)
            for topic, count in _count_by_topic(received).items():
                self._batches.count(topic, count)
            self._batches.handled(started, newest)
            if self.commit_to_kafka:
                self.consumer.commit(offsets=[TopicPartition(self.settings.topic(t), p, o)
                                              for (t, p), o in self.batch_positions.items()], asynchronous=False)
        if halted is not None:
            raise halted

    def reject(self, received: Received, reason: str) -> None:
        """Send one decoded but invalid message to lc.dlq, durably, before the caller goes on; on an
        ordered chain-fact topic, halt the stage instead (`StageHalted`)."""
        if ordered_facts(received.topic):
            raise halt_at(received.topic, received.partition, received.offset, reason)
        key = received.key.encode() if received.key is not None else None
        self._dead_letter(self.settings.topic(received.topic), received.partition, received.offset, key,
                          received.raw, reason)
        self.dlq.flush()

    def _dead_letter(self, physical_topic: str, partition: int, offset: int, key: bytes | None,
                     value: bytes | None, reason: str) -> None:
        log.warning("%s: %s[%d]@%d to the dead-letter topic: %s", self.group_id, physical_topic, partition,
                    offset, reason)
        metrics.DEAD_LETTERS.labels(self.group_id, self.catalogue_topic(physical_topic)).inc()
        self.dlq.dead_letter(
            stage=self.group_id,
            reason=reason,
            source_topic=self._physical_to_catalogue.get(physical_topic, physical_topic),
            source_partition=partition,
            source_offset=offset,
            source_key=key.decode(errors="replace") if key is not None else None,
            original=value,
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("%s assigned %s", self.group_id, [(p.topic, p.partition) for p in partitions])
        if self._user_on_assign is not None:
            positioned = self._user_on_assign(partitions)
            if positioned is not None:
                consumer.incremental_assign(positioned)
                return
        consumer.incremental_assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("%s revoked %s", self.group_id, [(p.topic, p.partition) for p in partitions])
        if self._user_on_revoke is not None:
            self._user_on_revoke(partitions)
        consumer.incremental_unassign(partitions)

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            if self._dlq is not None:
                self._dlq.close()


def _count_by_topic(received: list[Received]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in received:
        counts[r.topic] = counts.get(r.topic, 0) + 1
    return counts
