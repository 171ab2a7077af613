"""What the lc.accounts tests share: a running projector, raw topic reads, table rows."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from psycopg.rows import dict_row

from cli.settings import Settings
from kits.background import Background, wait_for
from projections.framework import Projector
from projections.registry import all_projections

KEY_A = "a1" * 32
KEY_B = "b2" * 32
ALICE = "0xAaAa00000000000000000000000000000000000A"
ELECTING = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART}


class RunningProjector:
    """The lc-projector group (every projection) in a background thread."""

    def __init__(self, settings: Settings, *, batch_size: int = 5000) -> None:
        self.settings = settings
        self.projector = Projector(settings, all_projections(), batch_size=batch_size)
        self.worker = Background(self.projector.run, self.projector.stop.set)

    def wait_until_consumed(self, topic: str) -> None:
        """Until the stored offsets of `topic` reach its end offsets (all its messages projected)."""
        ends = end_offsets(self.settings, topic)
        wait_for(lambda: stored_offsets(self.settings, topic) == ends, what=f"{topic} projected to {ends}")

    def stop(self) -> None:
        self.worker.stop()


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    return {p: high for p, (_low, high) in _watermarks(settings, topic).items() if high > 0}


def stored_offsets(settings: Settings, topic: str) -> dict[int, int]:
    with psycopg.connect(settings.pg_dsn) as conn:
        rows = conn.execute("SELECT partition, next_offset FROM projection_offsets WHERE topic = %s",
                            (settings.topic(topic),)).fetchall()
    return dict(rows)


def _watermarks(settings: Settings, topic: str) -> dict[int, tuple[int, int]]:
    """Low and high watermark per partition, waiting out leader elections of a just-created topic."""
    physical = settings.topic(topic)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": uuid.uuid4().hex})
    found: dict[int, tuple[int, int]] = {}

    def read_all() -> bool:
        partitions = consumer.list_topics(physical, timeout=10).topics[physical].partitions
        for p in partitions:
            if p not in found:
                try:
                    found[p] = consumer.get_watermark_offsets(TopicPartition(physical, p), timeout=10)
                except KafkaException as exc:
                    if exc.args[0].code() not in ELECTING:
                        raise
        return len(found) == len(partitions)

    try:
        wait_for(read_all, what=f"leaders of every partition of {physical}")
        return found
    finally:
        consumer.close()


def raw_messages(settings: Settings, topic: str) -> list[tuple[str, bytes]]:
    """(key, value bytes) of every message of a topic, as stored on the broker, in (partition, offset)
    order: the order partitions are read in is the broker's choice, so it is not compared."""
    physical = settings.topic(topic)
    remaining = end_offsets(settings, topic)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": uuid.uuid4().hex,
                         "enable.auto.commit": False})
    out: list[tuple[int, int, str, bytes]] = []
    try:
        consumer.assign([TopicPartition(physical, p, OFFSET_BEGINNING) for p in remaining])
        while remaining:
            message = consumer.poll(10)
            assert message is not None, f"{physical} not read to its end"
            if message.error():
                continue
            if message.offset() + 1 >= remaining.get(message.partition(), 0):
                remaining.pop(message.partition(), None)
            out.append((message.partition(), message.offset(), (message.key() or b"").decode(),
                        message.value() or b""))
    finally:
        consumer.close()
    return [(key, value) for _partition, _offset, key, value in sorted(out)]


def table_rows(settings: Settings, table: str, order_by: str) -> list[dict[str, Any]]:
    with psycopg.connect(settings.pg_dsn) as conn, conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(f"SELECT * FROM {table} ORDER BY {order_by}").fetchall()


def table_text(settings: Settings, table: str) -> str:
    """Every value of every row of a table as one text, to look for what must not be there."""
    with psycopg.connect(settings.pg_dsn) as conn:
        rows = conn.execute(f"SELECT row_to_json(t)::text FROM {table} t").fetchall()
    return "\n".join(row[0] for row in rows)
