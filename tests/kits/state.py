"""Restoring stages in-process and reading what their changelogs and groups hold (no tests here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from confluent_kafka import Consumer, TopicPartition

from cli.settings import Settings
from eventlog.admin import watermarks
from eventlog.processing.changelog import Changelog, Meta, Restored
from eventlog.producer import EventProducer
from kits.background import Background, wait_for
from kits.processors import T0, TIMELINE, publish_block
from kits.ranking import publish_inputs
from streams.processors.dispatcher import Dispatcher
from streams.processors.evaluator import Evaluator


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


def transactions_settled(settings: Settings, topic: str) -> bool:
    """Every transaction on the topic's partitions is resolved: a read_committed reader's end (the last
    stable offset) is the high watermark. A commit returns before the broker has written its markers,
    and until then a reader that stops at its end does not see what the transaction wrote."""
    physical = settings.topic(topic)
    ends = []
    for isolation in ("read_committed", "read_uncommitted"):
        consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "test-ends",
                             "isolation.level": isolation})
        try:
            ends.append([watermarks(consumer, TopicPartition(physical, p), 10)[1] for p in range(settings.topic_partitions)])
        finally:
            consumer.close()
    return ends[0] == ends[1]


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
    """Each changelog partition covers exactly the input offsets its group has committed.

    Read once the changelog's transactions are settled. A SIGKILLed instance's open transaction holds
    back read_committed readers of the changelog partitions it wrote to until its coordinator aborts it
    (the 20 s transaction timeout; the next instance has its own transactional id, so it does not end
    it). Meanwhile the next instance's commits move the group's offsets, but a reader of the changelog
    stops before its entries (a restore in that time replays the inputs in between:
    eventlog/processing/changelog.py `plan`). A commit's markers are also written partition by partition,
    so its offsets can show a moment before its changelog entries do."""
    wait_for(lambda: transactions_settled(settings, changelog_topic), timeout=90,
             what=f"the transactions on {changelog_topic} settled")
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


def assert_changelog_exact(settings: Settings, stage_cls: Any, changelog_topic: str,
                           state: Callable[[Any], Any]) -> None:
    """The changelog covers exactly the input offsets the group committed, and the state restored from it
    (no input replayed) is the state rebuilt from offset 0 up to them (`state(stage)`: what to compare)."""
    assert_meta_matches_group(settings, stage_cls, changelog_topic)
    from_changelog, from_zero = stage_cls(settings), stage_cls(settings.replace(restore_from_zero=True))
    try:
        assert restore_all(settings, from_changelog).replayed == 0
        restore_all(settings, from_zero)
        assert state(from_changelog) == state(from_zero)
    finally:
        close(from_changelog)
        close(from_zero)


class KeptDispatcher(Dispatcher):
    """Keeps what it forgets when its partitions are revoked (on stop): the run's final state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept: dict[int, Any] = {}

    def forget(self, partition: int) -> None:
        if partition in self.partitions:
            self.kept[partition] = self.partitions[partition]
        super().forget(partition)


def dispatcher_inputs(settings: Settings) -> None:
    """The ranking cases (kits/ranking.py), their verdicts (an evaluator run to its end) and three blocks:
    before, at the ranking moment of every case, and after the last input (taken live only)."""
    with EventProducer(settings, "test") as producer:
        publish_inputs(producer)
    evaluator = Evaluator(settings)
    run_until(evaluator, lambda: merged_idle(settings, evaluator), "the verdicts")
    close(evaluator)
    with EventProducer(settings, "test") as producer:
        publish_block(producer, 10, T0 + 86_400)
        publish_block(producer, 20, TIMELINE["endsAt"] + 60)
        publish_block(producer, 30, TIMELINE["endsAt"] + 120)
