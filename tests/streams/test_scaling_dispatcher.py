"""Two dispatcher processes in one group; one is SIGKILLed mid-stream; every challenge still gets
exactly one job, and every passing participant is named exactly once (duplicates share their id)."""

from __future__ import annotations

import signal
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from kits.background import wait_for
from kits.processors import (
    T0,
    open_challenge,
    publish_block,
    publish_chain,
    publish_registration,
    read_all,
)
from kits.processors import stage_process as start

from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.topics import JOBS, VERDICTS
from streams.dispatch import job_id_for
from streams.processors.dispatcher import GROUP

CHALLENGES = range(1, 201)
CREATOR = "0x" + "ee" * 20
FIRST = [f"0x{n:040x}" for n in (1, 2, 3)]
LATE = f"0x{4:040x}"


def verdict(producer: EventProducer, cid: int, subject: str) -> None:
    producer.publish(VERDICTS, str(cid), "VerdictIssued", {
        "challenge_id": cid, "subject": subject, "pass": True, "score": 1.0, "reasons": [], "metadata_json": None,
        "evaluator": "fitbit:stream", "evidence_hash": "0x01", "evidence_at": T0 * 1000,
        "trigger_event_id": f"e:{cid}:{subject}"}, event_id=f"v:{cid}:{subject}", occurred_at=T0 * 1000)


def named(settings: Settings) -> tuple[dict[int, set[str]], dict[int, set[str]], dict[tuple[int, str], set[str]]]:
    """Per challenge: distinct JobQueued ids, participants named; per (challenge, participant) the ids naming it."""
    queued: dict[int, set[str]] = defaultdict(set)
    participants: dict[int, set[str]] = defaultdict(set)
    naming: dict[tuple[int, str], set[str]] = defaultdict(set)
    for job in read_all(settings, JOBS):
        p = job.event.payload
        assert p["job_id"] == job_id_for(p["challenge_id"])
        if job.event.event_type == "JobQueued":
            queued[p["challenge_id"]].add(job.event.event_id)
        for who in p.get("participants", []):
            participants[p["challenge_id"]].add(who)
            naming[(p["challenge_id"], who)].add(job.event.event_id)
    return queued, participants, naming


def all_named(settings: Settings, participant: str) -> bool:
    participants = named(settings)[1]
    return all(participant in participants[cid] for cid in CHALLENGES)


def members_with_partitions(settings: Settings) -> int:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    group_id = f"{settings.topic_prefix}{GROUP}"
    description = admin.describe_consumer_groups([group_id])[group_id].result(30)
    return sum(1 for m in description.members if m.assignment and m.assignment.topic_partitions)


@pytest.mark.slow
def test_two_dispatchers_and_a_sigkill_give_one_job_per_challenge(settings: Settings, tmp_path: Path) -> None:
    with EventProducer(settings, "test") as producer:
        publish_block(producer, 1, T0 + 86_400)  # inside every challenge's proof window
        for cid in CHALLENGES:
            publish_registration(producer, cid, {"rules": {"type": "fitness", "metric": "steps", "threshold": 1,
                                                           "period": "total"}})
            open_challenge(producer, cid, CREATOR, FIRST)
            for subject in FIRST:
                verdict(producer, cid, subject)
    first, second = start(settings, "dispatcher", tmp_path / "first.log"), start(settings, "dispatcher",
                                                                                 tmp_path / "second.log")
    try:
        wait_for(lambda: members_with_partitions(settings) == 2, timeout=120, what="two members with partitions")
        wait_for(lambda: len(named(settings)[0]) > 0, timeout=120, what="the first jobs")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        with EventProducer(settings, "test") as producer:
            for cid in CHALLENGES:
                publish_chain(producer, cid, "Joined", {"id": str(cid), "user": LATE, "amount": "1"}, block=2, ts=T0)
                verdict(producer, cid, LATE)
        wait_for(lambda: all_named(settings, LATE), timeout=300, what="the late participant in every job")
    finally:
        first.kill()
        second.send_signal(signal.SIGTERM)
        assert second.wait(120) == 0, (tmp_path / "second.log").read_text()[-3000:]
    queued, participants, naming = named(settings)
    for cid in CHALLENGES:
        assert len(queued[cid]) == 1, cid
        assert participants[cid] == {*FIRST, LATE}, cid
    assert all(len(ids) == 1 for ids in naming.values())  # nobody named by two different decisions
