"""The one producer helper: idempotent, acks=all, delivery errors raised, flushed on close."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from eventlog import metrics
from eventlog.config import CoreSettings
from eventlog.failures import ClientNoise, OperatorError
from eventlog.serde import EventSerde
from eventlog.topics import DLQ, LARGEST_MESSAGE_BYTES, RECORD_BATCH_OVERHEAD

log = logging.getLogger(__name__)

# A dead letter keeps at most this much of the refused bytes (their size and SHA-256 always), so it
# fits on lc.dlq whatever was refused; the whole message stays on its source topic at its offset.
DEAD_LETTER_EXCERPT_BYTES = 64 * 1024
DEAD_LETTER_REASON_CHARS = 4000
DEAD_LETTER_KEY_CHARS = 1000

# One produce request in flight per broker: with more, librdkafka can report a batch the broker refused
# (NOT_LEADER_FOR_PARTITION while a leader is being elected, also on a just-created topic) as delivered,
# because the batch sent after it succeeded ("implicitly acked"; confluent-kafka-go issue 921). The broker
# takes that later batch as the producer's first on the partition, and a transaction then commits without
# the refused records, silently. Seen here: a changelog value's first piece missing from a committed
# transaction, 3 times in 130 writes to fresh topics under load; none in 160 with one request in flight.
DURABILITY = {"enable.idempotence": True, "acks": "all", "max.in.flight.requests.per.connection": 1}
# A transaction call that fails retriably (a timeout, a coordinator moving) is tried again, each time logged,
# until the transaction could no longer commit anyway: its coordinator aborts a transaction left open longer
# than transaction.timeout.ms. Past that the transaction is ended without waiting for the broker (a lost
# producer replaced, else an abort), so a stage never blocks in one commit for longer than the group lets it
# go without polling (librdkafka can wait in send_offsets_to_transaction until its timeout, call after call).
DEFAULT_TRANSACTION_TIMEOUT_MS = 60_000  # librdkafka's own
RETRY_PAUSE_S = 0.5  # between two tries of a transaction call that failed at once
RETRY_LOG_INTERVAL_S = 5.0  # a transaction call's failed tries: the first is logged, then one line per interval
# produce calls between two services of the client's callbacks: only failed deliveries report (they are
# also raised by the next flush or commit), so serving them on every call was pure cost
POLL_EVERY = 100
LOST_IN_A_ROW = 3  # producers of an instance's own id replaced without a commit between them, at most


def kafka_error(exc: KafkaException) -> KafkaError | None:
    """The KafkaError a KafkaException carries, if it carries one."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None


class DeliveryFailed(OperatorError):
    """The broker did not accept one or more messages; nothing after them may be assumed published (a
    command reports it in one line; a stage's own retry policy decides what follows)."""


class TransactionAborted(DeliveryFailed):
    """The open transaction could not be committed (a message of it was not delivered, or the broker
    answered with an abortable error) and has been aborted: nothing of it is visible and the consumer
    offsets sent with it were not committed. The producer can open the next one; the caller discards
    what it built on the aborted transaction and does that work again from what was committed. Fatal
    errors (a fenced producer, ...) are raised as `KafkaException` instead, the producer being unusable,
    or as `ProducerLost` by a producer the helper replaces."""


class ProducerLost(TransactionAborted):
    """The producer of an instance's own transactional id failed fatally (librdkafka can refuse even an
    abort as INVALID_TXN_STATE after a failover, its issue 4849): the open transaction is not committed, and
    the next one starts on a new librdkafka producer under the same id, whose initialisation aborts what
    the lost one left open (or completes a commit it had already decided). The same happens to a transaction
    whose commit did not finish within the transaction timeout. The caller recovers as from `TransactionAborted`,
    from what was committed. After LOST_IN_A_ROW
    replacements without a commit between them a fatal error is raised as it is: a cause that outlives
    producers (a refused authorisation, ...) must end the stage, not loop."""


class EventProducer:
    """Publishes events (Avro, with the common envelope) to catalogue topics.

    With `transactional_id`, publishes inside Kafka transactions (`transaction()`, or `begin()` ...
    `commit()`, which also commits a consumer group's offsets); without, every message is still
    idempotent per partition. Delivery errors are collected by the delivery
    callback and raised by the next `flush()` (also on leaving a transaction or the context).

    A transactional producer fences older producers of its id when it is created. With
    `fence_on_start=False` (an id of the instance's own, fenced by the group's generation instead)
    the transactions are initialised when the first one opens: a stage started while Kafka is down
    then waits in its consumer loop, where it hears SIGTERM, instead of failing in its constructor.
    No other producer shares such an id, so a fatal error cannot be a fencing by a newer instance: it
    raises `ProducerLost` and the producer is replaced (a shared id's fatal error is raised as it is).
    """

    def __init__(
        self,
        settings: CoreSettings,
        producer_name: str,
        *,
        transactional_id: str | None = None,
        serde: EventSerde | None = None,
        extra_config: dict[str, Any] | None = None,
        fence_on_start: bool = True,
    ) -> None:
        self.settings = settings
        self.producer_name = producer_name
        self.serde = serde or EventSerde(settings.schema_registry_url)
        config: dict[str, Any] = {
            "bootstrap.servers": settings.kafka_bootstrap,
            **ClientNoise(settings.kafka_bootstrap, producer_name,
                          replaced_when_fatal=bool(transactional_id) and not fence_on_start).config(),
            "client.id": producer_name,
            **DURABILITY,
            "linger.ms": 5,
            "compression.type": "lz4",
            "delivery.report.only.error": True,  # the delivery callback only records failures
            "on_delivery": self._on_delivery,
            # librdkafka checks a message's uncompressed size against this before sending; each topic's
            # own max.message.bytes (the catalogue) is what the broker enforces
            "message.max.bytes": LARGEST_MESSAGE_BYTES + RECORD_BATCH_OVERHEAD,
        }
        if transactional_id:
            config["transactional.id"] = f"{settings.topic_prefix}{transactional_id}"
        weakened = DURABILITY.keys() & (extra_config or {}).keys()
        if weakened:  # with min.insync.replicas, acks=all is what makes a write survive a node's loss
            raise ValueError(f"{producer_name}: {sorted(weakened)} stay as the producer helper sets them")
        config.update(extra_config or {})
        self._config = config
        self._transaction_timeout_s = int(config.get("transaction.timeout.ms", DEFAULT_TRANSACTION_TIMEOUT_MS)) / 1000
        self._producer = Producer(config)
        self._published: dict[str, Any] = {}  # physical topic -> counter child of lc_events_published
        self._unreported: dict[str, int] = {}  # physical topic -> messages produced, not counted in it yet
        self._produced = 0  # produce calls since the callbacks were last served
        self._errors: list[str] = []
        self._transactional = bool(transactional_id)
        self._in_transaction = False
        self._initialised = False
        self._replaceable = self._transactional and not fence_on_start
        self.replacements = 0  # producers lost and replaced (read by tests)
        self._lost_in_a_row = 0  # replacements since the last commit
        if self._transactional and fence_on_start:
            self._initialise()

    def _initialise(self) -> None:
        try:
            self._producer.init_transactions(30)
        except KafkaException as exc:
            self._fatal(exc)
            raise
        self._initialised = True

    def _fatal(self, exc: KafkaException) -> None:
        """Replace a lost producer of the instance's own id and raise `ProducerLost`; return when `exc` is
        not a fatal error or the id is shared."""
        error = kafka_error(exc)
        if error is not None and error.fatal():
            self._replace(error.str(), exc)

    def _replace(self, failure: str, exc: KafkaException) -> None:
        """Put a new librdkafka producer in the place of one that cannot end its transaction, and raise
        `ProducerLost`; return when the id is shared or LOST_IN_A_ROW replacements came without a commit."""
        if not self._replaceable or self._lost_in_a_row >= LOST_IN_A_ROW:
            return
        try:
            self._producer.purge()  # its messages belong to a transaction that will not commit
        except KafkaException:
            pass
        self._producer = Producer(self._config)
        self._initialised = self._in_transaction = False
        self._errors.clear()
        self.replacements += 1
        self._lost_in_a_row += 1
        raise ProducerLost(f"{self.producer_name}: producer lost, replaced by a new one: {failure}") from exc

    def publish(
        self,
        topic: str,
        key: str,
        event_type: str,
        payload: dict[str, Any],
        *,
        event_id: str,
        occurred_at: int | None = None,
        headers: dict[str, str | bytes] | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        """Publish one event to a catalogue topic (`lc.evidence`); the topic prefix is applied here.

        `timestamp_ms` sets the Kafka message timestamp (default: now); stream processors give an
        output its input's timestamp, so a replay orders the output as the original run did."""
        physical = self.settings.topic(topic)
        envelope = {
            "event_id": event_id,
            "occurred_at": occurred_at if occurred_at is not None else int(time.time() * 1000),
            "producer": self.producer_name,
        }
        value = self.serde.encode(physical, event_type, envelope, payload)
        self._produce(physical, key, value, headers, timestamp_ms)

    def publish_encoded(self, topic: str, key: str, value: bytes, *,
                        headers: dict[str, str | bytes] | None = None) -> None:
        """Publish an event already encoded for this producer (framing of `serde.frame`, envelope naming it)."""
        self._produce(self.settings.topic(topic), key, value, headers)

    def dead_letter(
        self,
        *,
        stage: str,
        reason: str,
        source_topic: str,
        source_partition: int = -1,
        source_offset: int = -1,
        source_key: str | None = None,
        original: bytes | None = None,
    ) -> None:
        """Route refused input to lc.dlq with the reason, its origin and a bounded excerpt of its bytes
        (with the size and SHA-256 of all of them): a dead letter never exceeds the topic's limit."""
        self.publish(
            DLQ,
            source_topic,
            "DeadLetter",
            {
                "stage": stage,
                "reason": reason[:DEAD_LETTER_REASON_CHARS],
                "source_topic": source_topic,
                "source_partition": source_partition,
                "source_offset": source_offset,
                "source_key": source_key[:DEAD_LETTER_KEY_CHARS] if source_key is not None else None,
                "original": original[:DEAD_LETTER_EXCERPT_BYTES] if original is not None else None,
                "original_size": len(original) if original is not None else -1,
                "original_sha256": hashlib.sha256(original).hexdigest() if original is not None else None,
            },
            event_id=f"dlq:{stage}:{source_topic}:{source_partition}:{source_offset}"
            if source_offset >= 0
            else f"dlq:{stage}:{source_topic}:{time.time_ns()}",
            headers={"lc-reason": reason[:1000], "lc-source-topic": source_topic,
                     "lc-source-partition": str(source_partition), "lc-source-offset": str(source_offset)},
        )

    def publish_raw(self, topic: str, partition: int, key: str, value: bytes | None,
                    headers: dict[str, str | bytes] | None = None) -> None:
        """A record that is not an event (a state changelog entry; None = a tombstone) to one partition."""
        self._produce(self.settings.topic(topic), key, value, headers, partition=partition)

    def _produce(self, topic: str, key: str, value: bytes | None, headers: dict[str, str | bytes] | None,
                 timestamp_ms: int | None = None, partition: int = -1) -> None:
        self._raise_collected_errors()
        if self._transactional and not self._in_transaction:
            self.begin()
        while True:
            try:
                # positional (topic, value, key, partition, on_delivery, callback, timestamp, headers): keyword
                # parsing was a third of the call; the delivery callback is the config's
                self._producer.produce(topic, value, key.encode(), partition, None, None, timestamp_ms or 0, headers)
                break
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain, then retry
            except KafkaException as exc:  # a transaction in an abortable state refuses further messages
                self._transaction_failed(exc)
        self._unreported[topic] = self._unreported.get(topic, 0) + 1
        self._produced += 1
        if self._produced >= POLL_EVERY:
            self._poll()

    def _poll(self) -> None:
        """Serve the client's callbacks (failed deliveries, errors) and count what was handed over."""
        self._produced = 0
        self._producer.poll(0)
        for topic, count in self._unreported.items():
            counter = self._published.get(topic)
            if counter is None:
                counter = self._published[topic] = metrics.EVENTS_PUBLISHED.labels(
                    self.producer_name, topic.removeprefix(self.settings.topic_prefix))
            counter.inc(count)
        self._unreported.clear()

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")

    def _raise_collected_errors(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            failure = f"{len(errors)} message(s) not delivered; first: {errors[0]}"
            if self._in_transaction:  # the transaction cannot commit without them
                self._abort_failed(failure)
            raise DeliveryFailed(failure)

    def _transaction_failed(self, exc: KafkaException) -> NoReturn:
        """Abort the open transaction and raise `TransactionAborted` when `exc` asks for it; else re-raise."""
        self._fatal(exc)
        error = kafka_error(exc)
        if error is None or error.fatal() or not self._in_transaction or not error.txn_requires_abort():
            raise exc
        self._abort_failed(error.str())

    def _abort_failed(self, failure: str) -> NoReturn:
        self.abort()
        raise TransactionAborted(f"{self.producer_name}: transaction aborted: {failure}")

    def _transaction_call(self, what: str, call: Callable[[float], None], deadline: float) -> None:
        """One call of the transaction API, given the seconds left until `deadline`: retriable errors are
        tried again until then, abortable ones abort the transaction (`TransactionAborted`), fatal ones are
        raised; one still failing at the deadline ends the transaction (`_overdue`)."""
        failures, logged_at = 0, -RETRY_LOG_INTERVAL_S
        while True:
            try:
                call(max(deadline - time.monotonic(), 1.0))
                if failures:
                    log.info("%s: %s succeeded after %d failed attempt(s)", self.producer_name, what, failures)
                return
            except KafkaException as exc:
                error = kafka_error(exc)
                if error is None or error.fatal() or not error.retriable():
                    self._transaction_failed(exc)
                failures += 1
                now = time.monotonic()
                left = deadline - now
                if left <= 0:
                    self._overdue(what, error, exc)
                if now - logged_at >= RETRY_LOG_INTERVAL_S:  # a call failing at once would log every pause
                    log.warning("%s: %s failed (%s; %d failed attempt(s) so far); trying again for %.0f s more",
                                self.producer_name, what, error.str(), failures, left)
                    logged_at = now
                time.sleep(min(RETRY_PAUSE_S, left))

    def _overdue(self, what: str, error: KafkaError, exc: KafkaException) -> NoReturn:
        """The transaction was not ended within its timeout, so its coordinator aborts it if it has not
        decided it: a producer of the instance's own id is replaced (the new one's initialisation ends what
        this one left, without waiting for it); a shared id's transaction is aborted."""
        failure = f"{what} did not succeed within the transaction timeout ({self._transaction_timeout_s:.0f} s): " \
                  f"{error.str()}"
        self._replace(failure, exc)
        if self._in_transaction:
            self._abort_failed(failure)
        raise exc

    def flush(self, timeout: float = 60.0) -> None:
        self._poll()
        remaining = self._producer.flush(timeout)
        self._raise_collected_errors()
        if remaining:
            raise DeliveryFailed(f"{remaining} message(s) still undelivered after {timeout} s")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything published inside becomes visible to read_committed consumers together, or not at all."""
        self.begin()
        try:
            yield
            self.commit()
        except BaseException:
            self.abort()
            raise

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    def begin(self) -> None:
        """Open a transaction (publishing on a transactional producer opens one when none is open)."""
        if not self._transactional:
            raise RuntimeError("transactions need a producer created with transactional_id")
        if not self._in_transaction:
            if not self._initialised:
                self._initialise()
            try:
                self._producer.begin_transaction()
            except KafkaException as exc:
                self._fatal(exc)
                raise
            self._in_transaction = True

    def commit(self, offsets: Sequence[TopicPartition] = (), group_metadata: object | None = None) -> None:
        """Commit the open transaction, with `offsets` committed for the consumer group of `group_metadata`
        in it: the published records and the consumed offsets count together, or not at all."""
        if not self._in_transaction and not offsets:
            return
        self.begin()
        deadline = time.monotonic() + self._transaction_timeout_s
        self._poll()
        self._producer.flush(self._transaction_timeout_s)
        self._raise_collected_errors()
        if offsets:
            self._transaction_call("send_offsets_to_transaction", lambda timeout: self._producer.send_offsets_to_transaction(
                list(offsets), group_metadata, timeout), deadline)
        self._transaction_call("commit_transaction", self._producer.commit_transaction, deadline)
        self._in_transaction = False
        self._lost_in_a_row = 0

    def abort(self) -> None:
        """Abort the open transaction (retriable errors are tried again within the transaction timeout); what
        it held is dropped, the failed deliveries of its messages included."""
        if self._in_transaction:
            self._in_transaction = False
            deadline = time.monotonic() + self._transaction_timeout_s
            self._transaction_call("abort_transaction", self._producer.abort_transaction, deadline)
            self._producer.poll(0)  # the purged messages' delivery reports: they belonged to the aborted transaction
            self._errors.clear()

    def close(self) -> None:
        """Flush; an open transaction is aborted (what it holds was never committed, so never counted)."""
        if self._in_transaction:
            self.abort()
        self.flush()

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def close_quietly(producer: EventProducer) -> None:
    """Close a producer while another error ends its stage: that error stays the one raised, a failure
    to close is logged."""
    try:
        producer.close()
    except Exception as exc:  # any: the error already propagating is the one the operator must see
        log.warning("%s: not closed cleanly while the stage was ending on an error: %s", producer.producer_name, exc)
