"""The projector framework: topics in, PostgreSQL rows out, exactly once.

A `Projector` is one consumer group (`lc-projector`) hosting several `Projection`s. For every batch
it opens one database transaction, lets each projection apply the events of its topics, writes its
consumer offsets into `projection_offsets`, and commits. On assignment it seeks to the stored
offsets, so a crash at any point (kill -9 included) resumes exactly after the last committed batch.

The offsets write is fenced: it only succeeds if the stored offset is still the one this projector
last wrote (or read on assignment). If another writer moved it (a stale owner after a rebalance, or
`lc rebuild` swapping in a freshly built schema), the batch is rolled back and the projector
re-seeks to what is stored. That keeps rows and offsets in agreement under every interleaving.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import psycopg
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from eventlog.config import Settings
from eventlog.consumer import ConsumerLoop, Received, Reject, StopFlag

log = logging.getLogger(__name__)

PROJECTOR_GROUP = "lc-projector"


class Projection(Protocol):
    """One table family. `apply` runs inside the projector's transaction; it must not commit."""

    name: str
    topics: tuple[str, ...]

    def apply(self, conn: psycopg.Connection, events: Sequence[Received], reject: Reject) -> None: ...


class StaleOffsets(RuntimeError):
    """Someone else advanced this projector's stored offsets; the batch must be re-read."""


@dataclass
class OffsetFence:
    """What this process believes is stored per (catalogue topic, partition): None = no row yet."""

    expected: dict[tuple[str, int], int | None] = field(default_factory=dict)


def connect(dsn: str, schema: str = "public") -> psycopg.Connection:
    return psycopg.connect(dsn, options=f"-c search_path={schema}", autocommit=True)


def load_offsets(conn: psycopg.Connection, projector: str) -> dict[tuple[str, int], int]:
    rows = conn.execute(
        "SELECT topic, partition, next_offset FROM projection_offsets WHERE projector = %s", (projector,)
    ).fetchall()
    return {(topic, partition): offset for topic, partition, offset in rows}


def store_offsets(conn: psycopg.Connection, projector: str, fence: OffsetFence,
                  new_offsets: dict[tuple[str, int], int]) -> None:
    for (topic, partition), next_offset in new_offsets.items():
        expected = fence.expected.get((topic, partition))
        row = conn.execute(
            """INSERT INTO projection_offsets AS o (projector, topic, partition, next_offset, updated_at)
               VALUES (%s, %s, %s, %s, now())
               ON CONFLICT (projector, topic, partition) DO UPDATE
                   SET next_offset = EXCLUDED.next_offset, updated_at = now()
                   WHERE o.next_offset = %s
               RETURNING next_offset""",
            (projector, topic, partition, next_offset, -1 if expected is None else expected),
        ).fetchone()
        if row is None:
            raise StaleOffsets(f"{projector}: offsets of {topic}[{partition}] moved by another writer")


class Projector:
    def __init__(
        self,
        settings: Settings,
        projections: Sequence[Projection],
        *,
        schema: str = "public",
        group_id: str = PROJECTOR_GROUP,
        stop: StopFlag | None = None,
        batch_size: int = 5000,
    ) -> None:
        self.settings = settings
        self.projections = list(projections)
        self.name = PROJECTOR_GROUP  # offsets rows are keyed by the projector, not by a rebuild's group
        self.conn = connect(settings.pg_dsn, schema)
        self.fence = OffsetFence()
        self.by_topic: dict[str, list[Projection]] = defaultdict(list)
        for projection in self.projections:
            for topic in projection.topics:
                self.by_topic[topic].append(projection)
        self.loop = ConsumerLoop(
            settings, group_id, sorted(self.by_topic), stop=stop, on_assign=self._on_assign,
            on_revoke=self._on_revoke, batch_size=batch_size, commit_to_kafka=True,
        )

    @property
    def stop(self) -> StopFlag:
        return self.loop.stop

    def run(self, until: Callable[[], bool] | None = None) -> None:
        try:
            self.loop.run(self.handle, until)
        finally:
            self.conn.close()

    def handle(self, batch: Sequence[Received], reject: Reject) -> None:
        new_offsets: dict[tuple[str, int], int] = {}
        by_projection: dict[int, list[Received]] = defaultdict(list)
        for received in batch:
            new_offsets[(received.topic, received.partition)] = received.offset + 1
            for projection in self.by_topic.get(received.topic, ()):
                by_projection[id(projection)].append(received)
        try:
            with self.conn.transaction():
                for projection in self.projections:
                    events = by_projection.get(id(projection))
                    if events:
                        projection.apply(self.conn, events, reject)
                store_offsets(self.conn, self.name, self.fence, new_offsets)
        except StaleOffsets as exc:
            log.warning("%s; re-reading from the stored offsets", exc)
            self._reseek()
            return
        self.fence.expected.update(new_offsets)

    def _on_assign(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        stored = load_offsets(self.conn, self.name)
        positioned = []
        for tp in partitions:
            topic = self.loop.catalogue_topic(tp.topic)
            offset = stored.get((topic, tp.partition))
            self.fence.expected[(topic, tp.partition)] = offset
            positioned.append(TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING if offset is None else offset))
        return positioned

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            topic = self.loop.catalogue_topic(tp.topic)
            self.fence.expected.pop((topic, tp.partition), None)

    def _reseek(self) -> None:
        stored = load_offsets(self.conn, self.name)
        for (topic, partition) in list(self.fence.expected):
            offset = stored.get((topic, partition))
            self.fence.expected[(topic, partition)] = offset
            self.loop.consumer.seek(TopicPartition(
                self.settings.topic(topic), partition, OFFSET_BEGINNING if offset is None else offset
            ))
