"""`lc topics create` (and `lc up`) give topics that already exist the catalogue's message size limit,
so an upgrade raises lc.evidence's (real broker)."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from cli.settings import Settings
from eventlog.admin import create_topics
from eventlog.topics import CATALOGUE, EVIDENCE


def max_message_bytes(admin: AdminClient, topic: str) -> str:
    [future] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    return future.result()["max.message.bytes"].value


def test_an_existing_topic_gets_the_catalogue_limit(settings: Settings) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    topic = settings.topic(EVIDENCE)
    wanted = str(CATALOGUE[EVIDENCE].max_message_bytes)
    assert max_message_bytes(admin, topic) == wanted  # as created
    [done] = admin.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", "1048588", incremental_operation=AlterConfigOpType.SET)])]).values()
    done.result()  # as a topic made before the limit was raised

    assert create_topics(settings) == []
    assert max_message_bytes(admin, topic) == wanted
