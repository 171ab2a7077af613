"""Restoring stages in-process and reading what their changelogs and groups hold (no tests here)."""

from __future__ import annotations

from typing import Any, Protocol

from confluent_kafka import Consumer, TopicPartition

from cli.settings import Settings
from eventlog.processing.changelog import Changelog, Meta, Restored
from kits.background import Background, wait_for


class Stage(Protocol):
    group: str
    restored: Restored | None

    def restore(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...


def input_topics(stage: Any) -> tuple[str, ...]:
    return tuple(getattr(stage, "inputs", None) or stage.topics)


def restore_all(settings: Settings, stage: Any) -> Restored:
    """Restore every partition of the stage's inputs, outside the group (nothing is consumed live)."""
    stage.restore([TopicPartition(settings.topic(topic), p) for topic in input_topics(stage)
                   for p in range(settings.topic_partitions)])
    assert stage.restored is not None
    return stage.restored


def close(stage: Any) -> None:
    stage.producer.close()
    if getattr(stage, "state_producer", None) is not None:
        stage.state_producer.close()
    if getattr(stage, "clock", None) is not None:
        stage.clock.close()
    stage.loop.consumer.close()


def metas(settings: Settings, topic: str) -> dict[int, Meta | None]:
    stored = Changelog(settings, topic, "test").read(range(settings.topic_partitions))
    return {p: found.meta for p, found in stored.items()}


def committed(settings: Settings, group: str, topics: tuple[str, ...]) -> dict[tuple[str, int], int]:
    """The group's committed offsets (read_committed: waits for a transaction still open on them)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": settings.topic_prefix + group,
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(settings.topic(t), p) for t in topics
                                    for p in range(settings.topic_partitions)], timeout=90)
        return {(t, tp.partition): tp.offset for t in topics for tp in found if tp.topic == settings.topic(t)}
    finally:
        consumer.close()


def assert_meta_matches_group(settings: Settings, stage_cls: Any, changelog_topic: str) -> None:
    """Each changelog partition covers exactly the input offsets its group has committed."""
    topics = input_topics(stage_cls)
    offsets = committed(settings, stage_cls.group, topics)
    for p, meta in metas(settings, changelog_topic).items():
        group_at = {t: max(offsets[(t, p)], 0) for t in topics}
        stored = {t: (meta.offsets.get(t, 0) if meta is not None else 0) for t in topics}
        assert stored == group_at, f"partition {p}: changelog covers {stored}, the group committed {group_at}"


def run_until(stage: Any, condition: Any, what: str, timeout: float = 120) -> None:
    background = Background(stage.run, stage.stop.set)
    try:
        wait_for(lambda: background.error is not None or condition(), timeout=timeout, what=what)
    finally:
        background.stop()


def merged_idle(settings: Settings, stage: Any) -> bool:
    """A MergedStage owns every partition, has read each input to its end and applied all it holds."""
    if len(stage.merges) != settings.topic_partitions:
        return False
    at_end = stage.loop.at_end
    if not all(at_end.get((t, p), False) for t in stage.inputs for p in stage.merges):
        return False
    if any(queue for merge in list(stage.merges.values()) for queue in merge.queues.values()):
        return False
    clock = stage.clock
    return clock is None or (clock.at_end and all(m.blocks_taken == len(clock.blocks)
                                                  for m in list(stage.merges.values())))
