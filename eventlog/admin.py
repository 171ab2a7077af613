"""Topic administration: create the catalogue's topics idempotently, list them with their offsets."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from eventlog.config import CoreSettings, redact_url
from eventlog.failures import ServiceUnavailable, client_config
from eventlog.topics import CATALOGUE


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    end_offsets: tuple[int, ...]

    @property
    def messages(self) -> int:
        return sum(self.end_offsets)


def create_topics(settings: CoreSettings) -> list[str]:
    """Create every catalogue topic that does not exist yet; returns the names created now."""
    admin = AdminClient(client_config(settings.kafka_bootstrap, "lc-admin"))
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [
        NewTopic(settings.topic(spec.name), num_partitions=spec.partitions or settings.topic_partitions,
                 replication_factor=1, config=spec.config())
        for spec in CATALOGUE.values()
        if settings.topic(spec.name) not in existing
    ]
    created = []
    for name, future in (admin.create_topics(wanted, operation_timeout=30).items() if wanted else []):
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # a concurrent creator won the race
                raise
    return created


def delete_prefixed_topics(settings: CoreSettings) -> list[str]:
    """Delete every topic under the settings' prefix (a test's or a benchmark's); never unprefixed ones."""
    if not settings.topic_prefix:
        raise ValueError("refusing to delete topics without a topic prefix")
    admin = AdminClient(client_config(settings.kafka_bootstrap, "lc-admin"))
    doomed = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
    for future in (admin.delete_topics(doomed, operation_timeout=30).values() if doomed else []):
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
    return doomed


def describe_topics(settings: CoreSettings) -> list[TopicState]:
    consumer = Consumer({**client_config(settings.kafka_bootstrap, "lc-admin"), "group.id": "lc-admin",
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=10)
        states = []
        for spec in CATALOGUE.values():
            topic = metadata.topics.get(settings.topic(spec.name))
            if topic is None or topic.error is not None:
                continue
            ends = tuple(
                consumer.get_watermark_offsets(TopicPartition(topic.topic, p), timeout=10)[1]
                for p in sorted(topic.partitions)
            )
            states.append(TopicState(spec.name, len(ends), ends))
        return states
    finally:
        consumer.close()


def require_kafka(settings: CoreSettings, what: str, timeout: float = 10.0) -> None:
    """Raise ServiceUnavailable (one line) unless the broker answers a metadata request within `timeout`:
    a command fails at once instead of retrying for minutes behind librdkafka's noise."""
    admin = AdminClient({**client_config(settings.kafka_bootstrap, what), "socket.timeout.ms": int(timeout * 1000)})
    try:
        brokers = admin.list_topics(timeout=timeout).brokers
    except KafkaException as exc:
        brokers = {}
        detail = exc.args[0].str() if exc.args else str(exc)
    else:
        detail = "no broker in the metadata"
    if not brokers:
        raise ServiceUnavailable(
            f"Kafka at {redact_url(settings.kafka_bootstrap)} did not answer within {timeout:.0f} s ({detail});"
            " check that the broker runs and LC_KAFKA_BOOTSTRAP")
