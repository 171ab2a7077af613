"""`lc lag`: how far each stage is behind the end of its topics.

Consumer groups report their committed offsets to Kafka; the projector's offsets live in
PostgreSQL (`projection_offsets`, written with its rows), so its lag is read from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient

from cli.settings import Settings
from eventlog.admin import describe_topics, require_kafka
from eventlog.config import redact_url
from eventlog.failures import ServiceUnavailable, client_config
from projections.framework import PROJECTOR_GROUP

# consumer groups that are not stages: `lc health` keeps its dead-letter mark in the first
NOT_STAGES = ("lc-health",)


@dataclass(frozen=True)
class Lag:
    group: str
    topic: str
    consumed: int
    end: int

    @property
    def behind(self) -> int:
        return max(self.end - self.consumed, 0)


def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    return {(s.name, p): end for s in describe_topics(settings) for p, end in enumerate(s.end_offsets)}


def projector_lag(settings: Settings, ends: dict[tuple[str, int], int]) -> list[Lag]:
    try:
        with psycopg.connect(settings.pg_dsn, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT topic, partition, next_offset FROM projection_offsets WHERE projector = %s", (PROJECTOR_GROUP,)
            ).fetchall()
    except psycopg.Error as exc:
        raise ServiceUnavailable(
            f"PostgreSQL at {redact_url(settings.pg_dsn, hide_path=False)} did not answer ({_first_line(exc)}): the projector's lag, "
            "kept there with its rows, is unknown; check the database and LC_PG_DSN") from None
    consumed: dict[str, int] = {}
    for physical, _partition, offset in rows:
        if physical.startswith(settings.topic_prefix):
            topic = physical[len(settings.topic_prefix):]
            consumed[topic] = consumed.get(topic, 0) + offset
    return [Lag(PROJECTOR_GROUP + " (PostgreSQL)", topic, consumed.get(topic, 0),
                sum(e for (t, _p), e in ends.items() if t == topic))
            for topic in sorted({t for t, _p in ends}) if topic in consumed]


def group_lags(settings: Settings, ends: dict[tuple[str, int], int]) -> list[Lag]:
    admin = AdminClient(client_config(settings.kafka_bootstrap, "lc-lag"))
    groups = [g.group_id for g in admin.list_consumer_groups(request_timeout=10).result().valid
              if g.group_id.startswith(f"{settings.topic_prefix}lc-")
              and g.group_id.removeprefix(settings.topic_prefix) not in NOT_STAGES]
    lags = []
    for group in sorted(groups):
        request = [ConsumerGroupTopicPartitions(group)]
        committed = admin.list_consumer_group_offsets(request)[group].result().topic_partitions
        per_topic: dict[str, int] = {}
        for tp in committed:
            if tp.offset >= 0 and tp.topic.startswith(settings.topic_prefix):
                topic = tp.topic[len(settings.topic_prefix):]
                per_topic[topic] = per_topic.get(topic, 0) + tp.offset
        for topic, consumed in sorted(per_topic.items()):
            lags.append(Lag(group.removeprefix(settings.topic_prefix), topic, consumed,
                            sum(e for (t, _p), e in ends.items() if t == topic)))
    return lags


def all_lags(settings: Settings) -> tuple[list[Lag], ServiceUnavailable | None]:
    """Every stage's lag; the consumer groups' even when PostgreSQL (the projector's) does not answer, with
    that failure."""
    require_kafka(settings, "lc-lag")
    ends = end_offsets(settings)
    lags = group_lags(settings, ends)
    try:
        return projector_lag(settings, ends) + lags, None
    except ServiceUnavailable as exc:
        return lags, exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]



