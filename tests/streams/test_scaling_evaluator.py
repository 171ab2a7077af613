"""Two evaluator processes in one group split the partitions; one is SIGKILLed mid-stream; every
evidence event still yields exactly one verdict id (none lost, duplicates share the id)."""

from __future__ import annotations

import random
import signal

import pytest
from confluent_kafka.admin import AdminClient
from kits.background import wait_for
from kits.processors import T0, of_type, publish_evidence, read_all, stage_process, steps

from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.topics import VERDICTS
from streams.processors.evaluator import GROUP
from streams.processors.evaluator_core import verdict_event_id

PER_PHASE = 15_000


def publish_phase(settings: Settings, phase: int, rng: random.Random) -> set[str]:
    expected = set()
    with EventProducer(settings, "test") as producer:
        for n in range(PER_PHASE):
            challenge, subject = rng.randrange(1, 300), f"0x{rng.randrange(10):040x}"
            event_id = publish_evidence(producer, challenge, subject, steps(rng.randrange(1000)),
                                        at_ms=(T0 + 86_400) * 1000 + n, event_id=f"scale:{phase}:{n}")
            expected.add(verdict_event_id(challenge, subject, event_id))
    return expected


def members_with_partitions(settings: Settings) -> int:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    group_id = f"{settings.topic_prefix}{GROUP}"
    description = admin.describe_consumer_groups([group_id])[group_id].result(30)
    return sum(1 for m in description.members if m.assignment and m.assignment.topic_partitions)


def verdict_ids(settings: Settings) -> list[str]:
    return [v.event.event_id for v in of_type(read_all(settings, VERDICTS), "VerdictIssued")]


@pytest.mark.slow
def test_two_instances_split_partitions_and_a_sigkill_loses_nothing(settings: Settings) -> None:
    rng = random.Random(4)
    expected = publish_phase(settings, 1, rng)
    first, second = stage_process(settings, "evaluator"), stage_process(settings, "evaluator")
    try:
        wait_for(lambda: members_with_partitions(settings) == 2, timeout=120, what="two members with partitions")
        wait_for(lambda: len(verdict_ids(settings)) > 0, timeout=120, what="the first verdicts")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        at_kill = len(set(verdict_ids(settings)))
        expected |= publish_phase(settings, 2, rng)
        assert at_kill < len(expected)
        wait_for(lambda: set(verdict_ids(settings)) >= expected, timeout=300, what="a verdict for every evidence")
        assert members_with_partitions(settings) == 1
    finally:
        first.kill()
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    ids = verdict_ids(settings)
    assert set(ids) == expected  # exactly one verdict id per evidence event, nothing else
    duplicates = len(ids) - len(set(ids))
    print(f"{len(expected)} evidence events, {len(ids)} verdict events, {duplicates} duplicates (same ids)")
