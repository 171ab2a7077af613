"""Topic administration: create the catalogue's topics idempotently, list them with their offsets."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from eventlog.config import ConfigError, CoreSettings
from eventlog.topics import CATALOGUE

# topic settings a newer catalogue may change on topics that already exist (an upgrade raises them);
# the others (cleanup policy, retention) are only ever set when a topic is created
ALIGNED_CONFIGS = ("max.message.bytes",)


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    end_offsets: tuple[int, ...]

    @property
    def messages(self) -> int:
        return sum(self.end_offsets)


def create_topics(settings: CoreSettings) -> list[str]:
    """Create every catalogue topic that does not exist yet, with the settings' replication factor and
    min.insync.replicas, and give existing ones the catalogue's `ALIGNED_CONFIGS`; returns the names
    created now."""
    if not 1 <= settings.topic_min_insync_replicas <= settings.topic_replication_factor:
        raise ConfigError(f"LC_TOPIC_MIN_INSYNC_REPLICAS={settings.topic_min_insync_replicas} must be between 1 and "
                          f"LC_TOPIC_REPLICATION_FACTOR={settings.topic_replication_factor}")
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    align_configs(admin, settings, existing)
    wanted = [
        NewTopic(settings.topic(spec.name), num_partitions=spec.partitions or settings.topic_partitions,
                 replication_factor=settings.topic_replication_factor,
                 config=spec.config(settings.topic_min_insync_replicas))
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


def align_configs(admin: AdminClient, settings: CoreSettings, existing: set[str]) -> list[str]:
    """Set the catalogue's value of each aligned setting where an existing topic differs; returns the
    topics changed."""
    wanted = {settings.topic(spec.name): {k: v for k, v in spec.config().items() if k in ALIGNED_CONFIGS}
              for spec in CATALOGUE.values() if settings.topic(spec.name) in existing}
    wanted = {topic: config for topic, config in wanted.items() if config}
    if not wanted:
        return []
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic) for topic in wanted])
    changes = []
    for resource, future in described.items():
        current = future.result()
        entries = [ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
                   for name, value in wanted[resource.name].items()
                   if name not in current or current[name].value != value]
        if entries:
            changes.append(ConfigResource(ResourceType.TOPIC, resource.name, incremental_configs=entries))
    for future in admin.incremental_alter_configs(changes).values() if changes else []:
        future.result()
    return [resource.name for resource in changes]


def delete_prefixed_topics(settings: CoreSettings) -> list[str]:
    """Delete every topic under the settings' prefix (a test's or a benchmark's); never unprefixed ones."""
    if not settings.topic_prefix:
        raise ValueError("refusing to delete topics without a topic prefix")
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    doomed = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
    for future in (admin.delete_topics(doomed, operation_timeout=30).values() if doomed else []):
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
    return doomed


def describe_topics(settings: CoreSettings) -> list[TopicState]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "lc-admin",
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
