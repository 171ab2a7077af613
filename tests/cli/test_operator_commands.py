"""Operator commands as events (issue 14 §2) against the real broker, database and anvil: each publishes
an operator fact (who, why, when) that a stage acts on and a projection shows; `--dry-run` publishes
nothing; running a command twice publishes the same fact."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from kits.background import Background, wait_for
from kits.writers import job_events, new_system, of_type, queue_job, register, writer_settings

from cli import main as lc
from cli.operator import Refused, job_command, publish, registry_retry
from cli.settings import Settings
from effects.aivm_worker import AivmWorker
from effects.registry_writer import RegistryWriter
from eventlog.producer import EventProducer
from eventlog.serde import EventSerde
from eventlog.topics import CHALLENGES_REGISTERED
from indexers.chain.kafka import read_topic
from projections.challenges import ChallengesProjection
from projections.framework import Projector
from projections.jobs import JobsProjection

OPERATOR = "alice"


@contextmanager
def running(*stages: Any) -> Iterator[None]:
    runners = [Background(stage.run, stage.stop.set) for stage in stages]
    try:
        yield
    finally:
        for runner in reversed(runners):
            runner.stop()


def projector(s: Settings) -> Projector:
    return Projector(s, [JobsProjection(), ChallengesProjection()])


def job_row(s: Settings, challenge_id: int) -> dict[str, Any]:
    with psycopg.connect(s.pg_dsn) as conn:
        row = conn.execute("SELECT status, attempts, operator_command, operator_name, operator_reason, operator_at, "
                           "last_error FROM aivm_jobs WHERE challenge_id = %s", (challenge_id,)).fetchone()
    keys = ("status", "attempts", "command", "operator", "reason", "at", "last_error")
    return dict(zip(keys, row, strict=True)) if row else {}


def registry_row(s: Settings, challenge_id: int) -> dict[str, Any]:
    with psycopg.connect(s.pg_dsn) as conn:
        row = conn.execute(
            "SELECT c.registry_status, w.final, w.retry_by, w.retry_reason, w.retry_at FROM challenges c "
            "LEFT JOIN challenge_registry_writes w ON w.challenge_id = c.id WHERE c.id = %s", (challenge_id,)).fetchone()
    return dict(zip(("status", "final", "retry_by", "retry_reason", "retry_at"), row, strict=True)) if row else {}


def fee_too_low(system: Any, too_low: bool) -> None:
    system.client.send(system.aivm, "setSpamControls", 10**18 if too_low else 0, 0, sender=system.roles.admin)


def job_whose_request_fails(settings: Settings, anvil: str, tmp_path: Any, **overrides: Any) -> tuple[Any, Settings, Any]:
    """A registered challenge and its queued job; the AIVM fee is too low until `fee_too_low(system, False)`."""
    system, drive = new_system(anvil)
    challenge = drive.create_challenge()
    fee_too_low(system, True)
    s = writer_settings(settings, system, tmp_path, operator=OPERATOR, **overrides)
    producer = EventProducer(s, "test")
    register(producer, challenge)
    queue_job(producer, challenge.id, [challenge.creator])
    return system, s, challenge


def test_requeue_brings_a_dead_job_back_and_the_worker_requests_it(settings, anvil, tmp_path):
    system, s, challenge = job_whose_request_fails(settings, anvil, tmp_path, aivm_max_attempts=1)

    with running(projector(s), AivmWorker(s)):
        wait_for(lambda: job_row(s, challenge.id).get("status") == "dead", what="the job dead")
        with pytest.raises(Refused, match="the job is dead; `lc jobs run` applies to .*requeue"):
            job_command(s, "run", challenge.id, "try")
        fee_too_low(system, False)

        fact = job_command(s, "requeue", challenge.id, "fee lowered")
        [dry] = publish(s, [fact], dry_run=True)
        assert dry.startswith("would publish JobRequeued") and 'as alice: "fee lowered"' in dry
        assert not of_type(job_events(s), "JobRequeued")  # a dry run publishes nothing

        publish(s, [fact], dry_run=False)
        publish(s, [job_command(s, "requeue", challenge.id, "fee lowered")], dry_run=False)  # twice: same state
        wait_for(lambda: job_row(s, challenge.id).get("status") == "submitted", what="the requeued job requested")

    requeued = of_type(job_events(s), "JobRequeued")
    assert len({e.event_id for e in requeued}) == 1  # the same fact, folded once
    assert requeued[0].payload["operator"] == OPERATOR and requeued[0].payload["reason"] == "fee lowered"
    row = job_row(s, challenge.id)
    assert (row["attempts"], row["command"], row["operator"], row["reason"]) == (2, "requeue", OPERATOR, "fee lowered")
    assert row["at"] is not None
    assert system.client.call(system.aivm, "nextRequestId") == 2
    with pytest.raises(Refused, match="the job is submitted; `lc jobs requeue` applies to dead, failed jobs"):
        job_command(s, "requeue", challenge.id, "again")


def test_run_works_on_a_failed_job_now_instead_of_after_its_backoff(settings, anvil, tmp_path):
    system, s, challenge = job_whose_request_fails(settings, anvil, tmp_path, writer_backoff_seconds=3600.0)

    with running(projector(s), AivmWorker(s)):
        wait_for(lambda: job_row(s, challenge.id).get("status") == "failed", what="the first attempt failed")
        fee_too_low(system, False)  # the worker would try again in an hour
        publish(s, [job_command(s, "run", challenge.id, "network fixed")], dry_run=False)
        wait_for(lambda: job_row(s, challenge.id).get("status") == "submitted", what="the job run now")

    row = job_row(s, challenge.id)
    assert (row["attempts"], row["command"], row["operator"], row["reason"]) == (2, "run", OPERATOR, "network fixed")
    assert system.client.call(system.aivm, "nextRequestId") == 2


def test_cancel_from_the_command_line_stops_the_job_with_who_and_why(settings, anvil, tmp_path, monkeypatch, capsys):
    system, drive = new_system(anvil)
    challenge = drive.create_challenge()
    s = writer_settings(settings, system, tmp_path)
    producer = EventProducer(s, "test")
    queue_job(producer, challenge.id, [challenge.creator])  # not registered yet: the worker cannot request it
    for name, value in (("LC_TOPIC_PREFIX", s.topic_prefix), ("LC_PG_DSN", s.pg_dsn),
                        ("LC_KAFKA_BOOTSTRAP", s.kafka_bootstrap), ("LC_OPERATOR", "bob")):
        monkeypatch.setenv(name, value)

    with running(projector(s)):
        wait_for(lambda: job_row(s, challenge.id).get("status") == "queued", what="the job projected")
        assert lc.main(["jobs", "cancel", str(challenge.id), "--reason", "wrong model", "--dry-run"]) == 0
        assert capsys.readouterr().out.startswith("would publish JobCanceled")
        assert lc.main(["jobs", "cancel", str(challenge.id), "--reason", "wrong model"]) == 0
        assert capsys.readouterr().out.startswith("published JobCanceled")
        wait_for(lambda: job_row(s, challenge.id).get("status") == "canceled", what="the job canceled")
        assert lc.main(["jobs", "cancel", str(challenge.id), "--reason", "again"]) == 1  # nothing left to cancel
        assert "the job is canceled" in capsys.readouterr().err
        assert lc.main(["jobs", "requeue", str(challenge.id), "--reason", " "]) == 2  # a reason is required
        assert "--reason must say why" in capsys.readouterr().err

    register(producer, challenge)
    worker = AivmWorker(s)
    with running(worker):
        wait_for(lambda: challenge.id in worker.views and worker.views[challenge.id].challenge.registered,
                 what="the worker to read the job")
    [canceled] = of_type(job_events(s), "JobCanceled")
    assert (canceled.payload["operator"], canceled.payload["reason"]) == ("bob", "wrong model")
    row = job_row(s, challenge.id)
    assert (row["status"], row["command"], row["operator"], row["reason"]) == ("canceled", "cancel", "bob", "wrong model")
    assert system.client.call(system.aivm, "nextRequestId") == 1  # never requested


def registry_records(s: Settings) -> list[dict[str, Any]]:
    serde = EventSerde(s.schema_registry_url)
    events = [serde.decode(m.value()) for m in read_topic(s, CHALLENGES_REGISTERED)]
    return [e.payload for e in events if e.event_type == "RegistryWriteRecorded"]


def test_registry_retry_re_arms_writes_that_gave_up(settings, anvil, tmp_path):
    system, drive = new_system(anvil)
    first, second = drive.create_challenge(), drive.create_challenge()
    s = writer_settings(settings, system, tmp_path, aivm_max_attempts=1, metadata_base_url="http://localhost:3000",
                        registry_private_key="0x" + system.roles.worker.key.hex(), operator=OPERATOR)  # not the owner
    producer = EventProducer(s, "test")
    register(producer, first)
    register(producer, second)
    with running(projector(s), RegistryWriter(s)):
        wait_for(lambda: all(registry_row(s, c.id).get("final") for c in (first, second)), what="two writes given up")
        with pytest.raises(Refused, match="no registry write recorded"):
            registry_retry(s, 999, 50, "x")

    owner = s.replace(registry_private_key="0x" + system.roles.admin.key.hex())
    facts = registry_retry(owner, None, 1, "owner key fixed")  # --failed --batch 1: the oldest challenge first
    assert [f.payload["challenge_id"] for f in facts] == [first.id]
    assert publish(owner, facts, dry_run=True)[0].startswith("would publish RegistryRetryRequested")
    with running(projector(owner), RegistryWriter(owner)):
        assert registry_row(owner, first.id)["status"] == "failed"  # a restarted writer leaves a final failure alone
        publish(owner, facts, dry_run=False)
        publish(owner, registry_retry(owner, None, 1, "owner key fixed"), dry_run=False)  # again: the same fact
        wait_for(lambda: registry_row(owner, first.id).get("status") == "success", what="the retried write")

    assert registry_row(owner, second.id)["status"] == "failed"  # not in the batch
    row = registry_row(owner, first.id)
    assert (row["retry_by"], row["retry_reason"]) == (OPERATOR, "owner key fixed") and row["retry_at"] is not None
    assert system.client.call(system.metadata, "uri", system.pay.address, first.id).endswith(f"/meta/{first.id}")
    retries = [e for e in registry_records(owner) if e["challenge_id"] == first.id]
    assert [(r["status"], r["attempt"]) for r in retries] == [("failed", 1), ("success", 2)]
    with pytest.raises(Refused, match="the registry write is success"):
        registry_retry(owner, first.id, 50, "again")
