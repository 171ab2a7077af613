"""Shared setup of the chain-writer tests: contracts on anvil, registrations and jobs on Kafka."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_utils import keccak

from cli.settings import Settings
from devchain.deploy import write_deployments
from devchain.scenario import Challenge, Scenario
from devchain.system import LightChallenge
from eventlog.producer import EventProducer
from eventlog.serde import Event, EventSerde
from eventlog.topics import CHALLENGES_REGISTERED, JOBS, VERDICTS
from indexers.chain.kafka import read_topic
from streams.dispatch import job_id_for

MODEL = "apple_health.steps@1"


def writer_settings(settings: Settings, system: LightChallenge, tmp_path: Path, **overrides: Any) -> Settings:
    deployments = write_deployments(tmp_path / "deployments.json", system.addresses, system.client.chain_id)
    values: dict[str, Any] = {
        "rpc_url": system.client.rpc_url, "chain_id": system.client.chain_id, "deployments_file": str(deployments),
        "private_key": "0x" + system.roles.worker.key.hex(),
        "finalizer_private_key": "0x" + system.roles.finalizer.key.hex(),
        "writer_backoff_seconds": 0.0, "confirmations": 0, "chain_poll_seconds": 0.05,
    }
    return settings.replace(**{**values, **overrides})


def hashes(challenge_id: int) -> dict[str, str]:
    return {
        "model_hash": "0x" + keccak(text=f"model:{MODEL}").hex(),
        "paramsHash": "0x" + keccak(text=f"params:{challenge_id}").hex(),
        "benchmarkHash": "0x" + keccak(text=f"benchmark:{challenge_id}").hex(),
    }


def register(producer: EventProducer, challenge: Challenge) -> None:
    h = hashes(challenge.id)
    payload = {
        "challenge_id": challenge.id, "subject": challenge.creator.lower(), "model_id": MODEL,
        "model_hash": h["model_hash"], "title": f"challenge {challenge.id}", "description": None, "tx_hash": None,
        "params_json": json.dumps({"rule": {"mode": "threshold"}}),
        "proof_json": json.dumps({"backend": "lightchain_poi", "modelId": MODEL, "paramsHash": h["paramsHash"],
                                  "benchmarkHash": h["benchmarkHash"]}),
        "timeline_json": json.dumps({"startsAt": challenge.start_ts, "endsAt": challenge.end_ts,
                                     "proofDeadline": challenge.proof_deadline_ts}),
        "funds_json": None, "options_json": None, "mode": "threshold", "top_n": 1, "registered_by": None,
        "source": "cli",
    }
    producer.publish(CHALLENGES_REGISTERED, str(challenge.id), "ChallengeRegistered", payload,
                     event_id=f"reg:{challenge.id}")
    producer.flush()


def queue_job(producer: EventProducer, challenge_id: int, participants: list[str]) -> str:
    job_id = job_id_for(challenge_id)
    producer.publish(JOBS, str(challenge_id), "JobQueued", {
        "job_id": job_id, "challenge_id": challenge_id, "mode": "threshold",
        "participants": sorted(p.lower() for p in participants)}, event_id=f"queue:{challenge_id}")
    producer.flush()
    return job_id


def add_participants(producer: EventProducer, challenge_id: int, participants: list[str]) -> None:
    producer.publish(JOBS, str(challenge_id), "JobParticipantsAdded", {
        "job_id": job_id_for(challenge_id), "challenge_id": challenge_id,
        "participants": sorted(p.lower() for p in participants)}, event_id=f"add:{challenge_id}:{participants}")
    producer.flush()


def job_events(settings: Settings) -> list[Event]:
    serde = EventSerde(settings.schema_registry_url)
    return [serde.decode(m.value()) for m in read_topic(settings, JOBS)]


def of_type(events: list[Event], *types: str) -> list[Event]:
    return [e for e in events if e.event_type in types]


def new_system(rpc_url: str) -> tuple[LightChallenge, Scenario]:
    system = LightChallenge.deploy(rpc_url)
    return system, Scenario(system)


def publish_verdict(producer: EventProducer, challenge_id: int, subject: str, passed: bool) -> None:
    producer.publish(VERDICTS, str(challenge_id), "VerdictIssued", {
        "challenge_id": challenge_id, "subject": subject.lower(), "pass": passed, "score": None, "reasons": [],
        "metadata_json": None, "evaluator": "test", "evidence_hash": "0x" + "11" * 32, "evidence_at": None,
        "trigger_event_id": f"evidence:{challenge_id}:{subject.lower()}",
    }, event_id=f"verdict:{challenge_id}:{subject.lower()}")
    producer.flush()
