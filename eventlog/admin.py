"""Topic administration: create the catalogue's topics idempotently, list them with their offsets."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
    TopicMetadata,
)

from eventlog.config import ConfigError, CoreSettings, redact_url
from eventlog.failures import ServiceUnavailable, client_config
from eventlog.producer import DURABILITY
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
    admin = AdminClient(client_config(settings.kafka_bootstrap, "lc-admin"))
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
    await_usable(admin, [t.topic for t in wanted])
    return created


def await_usable(admin: AdminClient, topics: list[str], timeout: float = 30.0) -> None:
    """Return once the broker's metadata shows every topic with a leader for each partition. A KRaft
    controller answers CreateTopics when the topic is in its log, before the brokers have applied it:
    a stage started right after `create_topics` would otherwise find its topics missing."""
    deadline = time.monotonic() + timeout
    pending = list(topics)
    while pending:
        present = admin.list_topics(timeout=timeout).topics
        pending = [t for t in pending if not _has_leaders(present.get(t))]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"topic(s) {', '.join(pending)} were created but have no leader after "
                                     f"{timeout:.0f} s; check the brokers' logs")
        time.sleep(0.1)


def _has_leaders(topic: TopicMetadata | None) -> bool:
    return (topic is not None and topic.error is None and bool(topic.partitions)
            and all(p.leader >= 0 and p.error is None for p in topic.partitions.values()))


def align_configs(admin: AdminClient, settings: CoreSettings, existing: set[str], timeout: float = 30.0) -> list[str]:
    """Set the catalogue's value of each aligned setting where an existing topic differs; returns the
    topics changed, once the broker reports the new values (it applies the controller's change a moment
    after the answer)."""
    wanted = {settings.topic(spec.name): {k: v for k, v in spec.config().items() if k in ALIGNED_CONFIGS}
              for spec in CATALOGUE.values() if settings.topic(spec.name) in existing}
    wanted = {topic: config for topic, config in wanted.items() if config}
    changes = _config_changes(admin, wanted)
    for future in admin.incremental_alter_configs(changes).values() if changes else []:
        future.result()
    deadline = time.monotonic() + timeout
    while changes and (pending := _config_changes(admin, wanted)):
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"the broker still reports the old settings of {', '.join(r.name for r in pending)}"
                                     f" {timeout:.0f} s after they were changed; check the brokers' logs")
        time.sleep(0.1)
    return [resource.name for resource in changes]


def _config_changes(admin: AdminClient, wanted: dict[str, dict[str, str]]) -> list[ConfigResource]:
    """The alterations that would give each topic the `wanted` settings the broker does not report yet."""
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
    return changes


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
            ends = tuple(watermarks(consumer, TopicPartition(topic.topic, p), 10)[1] for p in sorted(topic.partitions))
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


ELECTING = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                      KafkaError.UNKNOWN_TOPIC_OR_PART})


def watermarks(consumer: Consumer, partition: TopicPartition, timeout: float = 30.0) -> tuple[int, int]:
    """(low, high) of a partition, waiting out the leader election of a topic created just now."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(partition, timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() not in ELECTING or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def copy_topic(settings: CoreSettings, topic: str, to_prefix: str, timeout: float = 30.0) -> int:
    """Copy every committed message of a catalogue topic into the same topic under `to_prefix`, partition
    by partition, with its key, value, headers and timestamp; returns how many. The target must be empty
    (create it first with the catalogue's settings: `create_topics`)."""
    source = settings.topic(topic)
    target = f"{to_prefix}{topic}"
    if source == target:
        raise ValueError(f"{source} would be copied onto itself")
    consumer = Consumer({**client_config(settings.kafka_bootstrap, "lc-topics-copy"), "group.id": "lc-topics-copy",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "isolation.level": "read_committed"})
    producer = Producer({**client_config(settings.kafka_bootstrap, "lc-topics-copy"), **DURABILITY, "linger.ms": 20})
    copied = 0
    failed: list[str] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failed.append(err.str())

    try:
        partitions = sorted(consumer.list_topics(source, timeout=timeout).topics[source].partitions)
        for partition in partitions:
            if watermarks(consumer, TopicPartition(target, partition), timeout)[1] > 0:
                raise ValueError(f"{target}[{partition}] is not empty: copy only into fresh topics")
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(source, partition), timeout=timeout)
            if high <= low:
                continue
            consumer.assign([TopicPartition(source, partition, low)])
            done = False
            while not done:
                for message in consumer.consume(1000, 5.0):
                    error = message.error()
                    if error is not None:
                        done = error.code() == KafkaError._PARTITION_EOF
                        if not done:
                            raise KafkaException(error)
                        break
                    producer.produce(target, value=message.value(), key=message.key(), partition=partition,
                                     headers=message.headers(), timestamp=message.timestamp()[1],
                                     on_delivery=delivered)
                    producer.poll(0)
                    copied += 1
            consumer.unassign()
        if producer.flush(60) or failed:
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, f"copy of {source} not delivered: "
                                            f"{failed[0] if failed else 'still queued after 60 s'}"))
    finally:
        consumer.close()
    return copied
