"""The same input topics replayed into fresh processors give identical verdicts, rankings and jobs.

A live run (inputs arriving while the evaluator and dispatcher work, chain time advancing later) is
copied message for message (partition, key, value, Kafka timestamp) into a fresh topic prefix, where
a fresh evaluator and dispatcher process everything at once, in whatever batches they get.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kits.background import Background, wait_for
from kits.processors import (
    T0,
    TIMELINE,
    of_type,
    open_challenge,
    publish_block,
    publish_chain,
    read_all,
    steps,
)
from kits.processors import publish_evidence as evidence
from kits.processors import publish_registration as register
from kits.ranking import CASES, CREATOR, A, B, C, publish_inputs, t

from cli.settings import Settings
from eventlog.admin import create_topics, delete_prefixed_topics
from eventlog.consumer import Received
from eventlog.producer import EventProducer
from eventlog.topics import CHAIN_BLOCKS, CHAIN_EVENTS, CHALLENGES_REGISTERED, EVIDENCE, JOBS, VERDICTS
from streams.processors.dispatcher import Dispatcher
from streams.processors.evaluator import Evaluator

INPUTS = (EVIDENCE, CHALLENGES_REGISTERED, CHAIN_EVENTS, CHAIN_BLOCKS)
THRESHOLD = 301


def run_stages(settings: Settings, until: Callable[[], bool], what: str) -> None:
    evaluator, dispatcher = Evaluator(settings), Dispatcher(settings)
    stages = [Background(evaluator.run, evaluator.stop.set), Background(dispatcher.run, dispatcher.stop.set)]
    try:
        wait_for(until, timeout=120, what=what)
    finally:
        for stage in stages:
            stage.stop()


def copy_topics(source: Settings, target: Settings) -> None:
    consumer = Consumer({"bootstrap.servers": source.kafka_bootstrap, "group.id": "copy", "enable.auto.commit": False})
    producer = Producer({"bootstrap.servers": source.kafka_bootstrap, "enable.idempotence": True})
    try:
        for topic in INPUTS:
            physical = source.topic(topic)
            for p in consumer.list_topics(physical, timeout=10).topics[physical].partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(physical, p), timeout=10)
                if high == 0:
                    continue
                consumer.assign([TopicPartition(physical, p, 0)])
                copied = 0
                while copied < high:
                    for m in consumer.consume(500, 1.0):
                        if m.error() is None:
                            producer.produce(target.topic(topic), m.value(), m.key(), partition=p,
                                             timestamp=m.timestamp()[1])
                        copied = max(copied, m.offset() + 1)
        producer.flush(30)
    finally:
        consumer.close()


def outputs(settings: Settings) -> dict[str, object]:
    verdicts = of_type(read_all(settings, VERDICTS), "VerdictIssued")
    final: dict[tuple[int, str], dict] = {}
    for v in verdicts:  # per partition in offset order: the last one per subject is the current verdict
        final[(v.event.payload["challenge_id"], v.event.payload["subject"])] = v.event.payload
    jobs: list[Received] = read_all(settings, JOBS)
    return {
        "verdict ids": {v.event.event_id for v in verdicts},
        "final verdicts": final,
        "rankings": {(r.event.event_id, repr(r.event.payload))
                     for r in of_type(read_all(settings, VERDICTS), "RankingPublished")},
        "jobs": {(j.event.event_id, j.event.event_type, repr(j.event.payload)) for j in jobs},
    }


def counts(settings: Settings) -> tuple[int, int, int]:
    verdicts = read_all(settings, VERDICTS)
    return (len({v.event.event_id for v in of_type(verdicts, "VerdictIssued")}),
            len(of_type(verdicts, "RankingPublished")), len({j.event.event_id for j in read_all(settings, JOBS)}))


@pytest.mark.slow
def test_replay_into_fresh_processors_gives_identical_outputs(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        expected = publish_inputs(producer)
        register(producer, THRESHOLD, {"rules": {"type": "fitness", "metric": "steps", "threshold": 100,
                                                 "period": "total"}}, timeline=TIMELINE)
        open_challenge(producer, THRESHOLD, CREATOR, [A, B, C])
        evidence(producer, THRESHOLD, A, steps(500), at_ms=t(5))
    # live: verdicts first, then chain time reaches the threshold window and the competitive end
    run_stages(settings, lambda: counts(settings)[0] >= expected + 1, "the first verdicts")
    with EventProducer(settings, "test") as producer:
        publish_block(producer, 50, T0 + 86_400)
        evidence(producer, THRESHOLD, B, steps(700), at_ms=t(1))
        publish_block(producer, 100, TIMELINE["endsAt"] + 60)
    run_stages(settings, lambda: counts(settings)[1] >= len(CASES) and counts(settings)[2] >= 12,
               "rankings and jobs")
    with EventProducer(settings, "test") as producer:
        evidence(producer, THRESHOLD, C, steps(900), at_ms=t(0))  # after the end: the job still gets C
        publish_chain(producer, THRESHOLD, "Finalized", {"id": str(THRESHOLD), "status": 2, "outcome": 1},
                      block=101, ts=TIMELINE["endsAt"] + 120)
    run_stages(settings, lambda: any(e[1] == "JobCanceled" for e in outputs(settings)["jobs"]), "the cancel")
    live = outputs(settings)

    fresh = settings.replace(topic_prefix=settings.topic_prefix.rstrip(".") + "r.")
    create_topics(fresh)
    try:  # (the fixture drops only its own prefix's topics)
        copy_topics(settings, fresh)
        want = counts(settings)
        run_stages(fresh, lambda: counts(fresh) >= want, "the replay's outputs")
        replayed = outputs(fresh)
    finally:
        delete_prefixed_topics(fresh)
    for name in live:
        assert replayed[name] == live[name], name
    assert len(live["rankings"]) == len(CASES)
