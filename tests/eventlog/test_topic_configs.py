"""`lc topics create` (and `lc up`) give topics that already exist the catalogue's message size limit,
so an upgrade raises lc.evidence's (real broker)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from cli.settings import Settings
from eventlog.admin import create_topics, delete_prefixed_topics
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
    deadline = time.monotonic() + 10  # the broker applies the controller's change a moment later
    while max_message_bytes(admin, topic) != "1048588" and time.monotonic() < deadline:
        time.sleep(0.05)

    assert create_topics(settings) == []
    assert max_message_bytes(admin, topic) == wanted


def test_created_topics_are_usable_when_create_returns(stack: Settings) -> None:
    """A stage started right after `lc topics create` finds every topic with a leader: the KRaft controller
    answers before the broker has applied the new topics, so create_topics waits for the metadata. The gap
    shows on a busy machine (13 of 15 creations without the wait, measured), so the test keeps the CPUs busy."""
    burn = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end: pass"  # bounded: outlives no run
    burners = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(os.cpu_count() or 2)]
    try:
        for attempt in range(5):
            settings = stack.replace(topic_prefix=f"tcreate{uuid.uuid4().hex[:8]}.")
            try:
                created = create_topics(settings)
                assert sorted(created) == sorted(settings.topic(name) for name in CATALOGUE)
                consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "t"})
                try:
                    present = consumer.list_topics(timeout=10).topics
                finally:
                    consumer.close()
                for name in created:
                    partitions = present[name].partitions.values()
                    assert partitions and all(p.leader >= 0 for p in partitions), (attempt, name)
            finally:
                delete_prefixed_topics(settings)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
