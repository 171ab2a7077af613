"""Reading a changelog back (real broker): from the start of each partition, also where the log no
longer starts at offset 0 (compaction or retention removed its head), to the end, newest value per key."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from cli.settings import Settings
from eventlog.processing.changelog import Changelog
from eventlog.producer import EventProducer
from eventlog.topics import STATE_EVALUATOR


def delete_records_once_allowed(admin: AdminClient, head: TopicPartition) -> Any:
    """DeleteRecords, retried while the broker still applies the old cleanup.policy (a config change
    reaches the partition's log a moment after the call that made it returns)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return admin.delete_records([head])[head].result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.POLICY_VIOLATION or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_changelog_whose_head_was_removed_is_read_from_its_log_start(settings: Settings) -> None:
    changelog = Changelog(settings, STATE_EVALUATOR, "test")
    with EventProducer(settings, "test", transactional_id="test-read") as producer, producer.transaction():
        for n in range(10):
            changelog.put(producer, 0, f"k{n % 4}", f"v{n}".encode())
            changelog.put(producer, 1, f"k{n}", f"w{n}".encode())
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    # (a compacted topic refuses DeleteRecords; with deletion allowed too, the head goes as retention would)
    allow_deletion = ConfigResource("topic", settings.topic(STATE_EVALUATOR), incremental_configs=[
        ConfigEntry("cleanup.policy", "compact,delete", incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([allow_deletion]).values():
        future.result()
    head = TopicPartition(settings.topic(STATE_EVALUATOR), 0, 4)  # offsets 0..3 (k0..k3 = v0..v3) removed
    assert delete_records_once_allowed(admin, head).low_watermark == 4

    stored = changelog.read([0, 1])
    assert stored[0].values == {"k0": b"v8", "k1": b"v9", "k2": b"v6", "k3": b"v7"}
    assert stored[1].values == {f"k{n}": f"w{n}".encode() for n in range(10)}
