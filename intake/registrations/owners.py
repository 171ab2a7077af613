"""Who owns each challenge id: the registration that stands per id, folded from lc.challenges.registered.

The registrations API and `lc challenge register` read the topic whole before they accept anything,
so the binding of an id to its first registration's subject survives any restart; the API then keeps
reading it in a background thread, so it learns what other instances and the CLI publish. The fold
is `domain.registration.check_update` in topic order, the same rule the projector applies: a later
registration that the rule refuses does not change what stands.

Race-safety: the API checks, publishes and records under one lock, so one instance never accepts two
conflicting registrations. With several instances, two conflicting registrations of one id that reach
two instances within the follow delay (well under a second) may both be answered 202; the topic
order then decides, and every reader applying the rule (this fold, the projector) keeps the first.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from domain.registration import (
    EVENT_TYPE,
    InvalidRegistration,
    Registration,
    check_update,
    registration_from_payload,
)
from eventlog.config import CoreSettings
from eventlog.processing.restore import FROM_THE_START, reader
from eventlog.serde import EventSerde, UndecodableMessage
from eventlog.topics import CHALLENGES_REGISTERED

log = logging.getLogger(__name__)


class RegistrationIndex:
    """The standing registration of every id registered so far (thread-safe)."""

    def __init__(self, settings: CoreSettings, purpose: str = "registrations") -> None:
        self.serde = EventSerde(settings.schema_registry_url)
        self._standing: dict[int, Registration] = {}
        self._lock = threading.Lock()
        self._consumer = reader(settings, purpose, {"enable.partition.eof": True})
        physical = settings.topic(CHALLENGES_REGISTERED)
        self._partitions = self._partitions_of(physical)
        self._consumer.assign([TopicPartition(physical, p, FROM_THE_START) for p in self._partitions])
        self._at_end: set[int] = set()
        self._follower: threading.Thread | None = None
        self._closing = threading.Event()

    def _partitions_of(self, physical: str, timeout_seconds: float = 30.0) -> list[int]:
        """The topic's partitions; a topic created a moment ago may be unknown to the first metadata."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            metadata = self._consumer.list_topics(physical, timeout=timeout_seconds).topics[physical]
            if metadata.error is None and metadata.partitions:
                return sorted(metadata.partitions)
            if time.monotonic() > deadline:
                raise KafkaException(metadata.error)
            time.sleep(0.2)

    def standing(self, challenge_id: int) -> Registration | None:
        with self._lock:
            return self._standing.get(challenge_id)

    def check(self, registration: Registration) -> None:
        """NotOwner or FrozenField when `registration` may not follow what stands for its id."""
        check_update(self.standing(registration.challenge_id), registration)

    def record(self, registration: Registration) -> bool:
        """Fold one registration in; False (and nothing changes) when the rule refuses it."""
        with self._lock:
            try:
                check_update(self._standing.get(registration.challenge_id), registration)
            except InvalidRegistration:
                return False
            self._standing[registration.challenge_id] = registration
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._standing)

    def poll(self, timeout: float) -> int:
        """Fold what the topic holds now; how many messages were read."""
        messages = self._consumer.consume(500, timeout)
        for message in messages:
            self._fold(message)
        return len(messages)

    def _fold(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(error)
            self._at_end.add(message.partition())
            return
        self._at_end.discard(message.partition())
        try:
            event = self.serde.decode(message.value())
            if event.event_type != EVENT_TYPE:
                return  # the registry writer's outcomes share the topic
            registration = registration_from_payload(event.payload)
        except (UndecodableMessage, InvalidRegistration, KeyError):
            return  # refused by every reader alike (the projector dead-letters it)
        if not self.record(registration):
            log.warning("registration %s at %s[%d]@%d ignored: the id's owner rule refuses it", event.event_id,
                        message.topic(), message.partition(), message.offset())

    def catch_up(self, timeout_seconds: float = 120.0) -> None:
        """Read until every partition has been read to its end once (TimeoutError after the timeout)."""
        deadline = time.monotonic() + timeout_seconds
        while len(self._at_end) < len(self._partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{CHALLENGES_REGISTERED} was not read to its end in {timeout_seconds:g} s")
            self.poll(0.5)

    def follow(self) -> None:
        """Keep folding new registrations in a background thread until `close`."""
        def run() -> None:
            while not self._closing.is_set():
                try:
                    self.poll(0.5)
                except Exception:  # a broker hiccup must not end the follower; the next poll retries
                    log.exception("reading %s failed; retrying", CHALLENGES_REGISTERED)
                    self._closing.wait(1.0)

        self._follower = threading.Thread(target=run, name="registrations-follower", daemon=True)
        self._follower.start()

    def close(self) -> None:
        self._closing.set()
        if self._follower is not None:
            self._follower.join(timeout=10)
        self._consumer.close()
