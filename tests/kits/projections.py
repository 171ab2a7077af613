"""Building chain events and registrations in tests, running the projector, reading the tables back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import psycopg

from cli.settings import Settings
from domain.registration import validate_registration
from eventlog.producer import EventProducer
from eventlog.topics import CHAIN_BLOCKS, CHAIN_EVENTS, CHALLENGES_REGISTERED, JOBS, VERDICTS
from intake.registrations.publish import publish_registration
from kits.background import Background, wait_for
from projections.framework import Projector
from projections.registry import all_projections

CHAIN_ID = 31337
ALICE = "0xA11CE" + "0" * 34 + "1"  # mixed case on purpose: rows hold them lower-cased
BOB = "0xB0B" + "0" * 36 + "2"
CAROL = "0xCA401" + "0" * 34 + "3"
CREATOR = "0xC4EA7" + "0" * 34 + "4"
CONTRACTS = {"ChallengePay": "0x" + "c1" * 20, "Treasury": "0x" + "7e" * 20, "MetadataRegistry": "0x" + "3d" * 20,
             "AIVMInferenceV2": "0x" + "a1" * 20, "ChallengeTaskRegistry": "0x" + "7b" * 20}
ZERO32 = "0x" + "00" * 32


def block_hash(number: int, fork: str = "") -> str:
    return "0x" + hashlib.sha256(f"block:{number}:{fork}".encode()).hexdigest()


def tx_hash(label: str) -> str:
    return "0x" + hashlib.sha256(f"tx:{label}".encode()).hexdigest()


@dataclass
class ChainFeed:
    """Publishes ChainEvent / BlockConfirmed / BlockReverted messages as the chain indexer would."""

    producer: EventProducer
    published: int = 0
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id -> message, for retractions

    def event(self, contract: str, event: str, args: dict[str, Any], *, block: int, log_index: int = 0,
              fork: str = "", challenge_id: int | None = None, tx: str | None = None,
              timestamp: int | None = None) -> str:
        hash_ = block_hash(block, fork)
        tx_ = tx or tx_hash(f"{block}:{fork}:{log_index}")
        cid = challenge_id if challenge_id is not None else int(args.get("id", args.get("bucketId",
                                                                                      args.get("challengeId", 0))))
        message = {
            "key": str(cid), "event_id": f"{CHAIN_ID}:{hash_}:{tx_}:{log_index}",
            "occurred_at": (timestamp or 1_700_000_000 + block) * 1000,
            "payload": {
                "chain_id": CHAIN_ID, "contract": contract, "address": CONTRACTS[contract], "event": event,
                "block_number": block, "block_hash": hash_, "block_timestamp": timestamp or 1_700_000_000 + block,
                "tx_hash": tx_, "tx_index": log_index, "log_index": log_index, "removed": False,
                "challenge_id": str(cid), "args": (f"lc.chain.{contract}.{event}", args),
            },
        }
        self._send(message)
        self.sent[message["event_id"]] = message
        return message["event_id"]

    def retract(self, event_id: str) -> None:
        original = self.sent[event_id]
        self._send({**original, "payload": {**original["payload"], "removed": True}})

    def republish(self, event_id: str) -> None:
        self._send(self.sent[event_id])

    def _send(self, message: dict[str, Any]) -> None:
        self.producer.publish(CHAIN_EVENTS, message["key"], "ChainEvent", message["payload"],
                              event_id=message["event_id"], occurred_at=message["occurred_at"])
        self.published += 1

    def block(self, number: int, *, fork: str = "", log_count: int = 0) -> None:
        self.producer.publish(
            CHAIN_BLOCKS, str(CHAIN_ID), "BlockConfirmed",
            {"chain_id": CHAIN_ID, "number": number, "hash": block_hash(number, fork),
             "parent_hash": block_hash(number - 1, fork), "timestamp": 1_700_000_000 + number,
             "log_count": log_count},
            event_id=f"{CHAIN_ID}:block:{block_hash(number, fork)}", occurred_at=(1_700_000_000 + number) * 1000)
        self.published += 1

    def revert(self, number: int, *, ancestor: int, fork: str = "") -> None:
        self.producer.publish(
            CHAIN_BLOCKS, str(CHAIN_ID), "BlockReverted",
            {"chain_id": CHAIN_ID, "number": number, "hash": block_hash(number, fork),
             "parent_hash": block_hash(number - 1, fork), "timestamp": 1_700_000_000 + number,
             "ancestor_number": ancestor, "ancestor_hash": block_hash(ancestor)},
            event_id=f"{CHAIN_ID}:revert:{block_hash(number, fork)}", occurred_at=(1_700_000_000 + number) * 1000)
        self.published += 1

    def register(self, document: dict[str, Any], *, occurred_at: int = 1_699_000_000_000) -> str:
        registration = validate_registration(document)
        self.published += 1
        return publish_registration(self.producer, registration, source="cli", registered_by=None,
                                    occurred_at=occurred_at)

    def registry_write(self, cid: int, status: str, *, attempt: int, tx: str | None = None, error: str | None = None,
                       occurred_at: int = 1_699_500_000_000) -> None:
        """What effects/registry_writer.py publishes after each attempt."""
        self.producer.publish(CHALLENGES_REGISTERED, str(cid), "RegistryWriteRecorded", {
            "challenge_id": cid, "status": status, "uri": f"http://x/api/challenges/meta/{cid}", "tx_hash": tx,
            "error": error, "attempt": attempt, "final": status != "failed", "chain_uri": None,
        }, event_id=f"registry:{cid}:{status}:{attempt}", occurred_at=occurred_at)
        self.published += 1

    # ChallengePay / Treasury / MetadataRegistry events with the indexer's arg encodings
    def created(self, cid: int, creator: str, *, block: int, **kw: Any) -> str:
        return self.event("ChallengePay", "ChallengeCreated", {
            "id": str(cid), "creator": creator.lower(), "kind": 1, "currency": 0, "token": "0x" + "00" * 20,
            "startTs": str(1_700_100_000), "externalId": "0x" + "00" * 32}, block=block, **kw)

    def joined(self, cid: int, user: str, amount: int, *, block: int, **kw: Any) -> str:
        return self.event("ChallengePay", "Joined", {"id": str(cid), "user": user.lower(), "amount": str(amount)},
                          block=block, **kw)

    def claimed(self, kind: str, cid: int, user: str, amount: int, *, block: int, **kw: Any) -> str:
        return self.event("ChallengePay", kind, {"id": str(cid), "user": user.lower(), "amount": str(amount)},
                          block=block, **kw)

    def treasury_claim(self, bucket: int, to: str, amount: int, *, block: int, **kw: Any) -> str:
        return self.event("Treasury", "ClaimedETH", {"bucketId": str(bucket), "to": to.lower(),
                                                    "amount": str(amount)}, block=block, **kw)

    def lifecycle(self, cid: int, event: str, *, block: int, log_index: int = 0, fork: str = "", **args: Any) -> str:
        return self.event("ChallengePay", event, {"id": str(cid), **args}, block=block, log_index=log_index,
                          fork=fork)

    # AIVM facts as the indexer re-publishes them once their task is bound (challenge id set)
    def aivm(self, cid: int, event: str, *, block: int, log_index: int = 0, **args: Any) -> str:
        defaults: dict[str, dict[str, Any]] = {
            "InferenceRequestedV2": {"requester": "0x" + "ee" * 20, "model": "fitness.steps@1",
                                     "promptHash": ZERO32, "promptId": ZERO32, "modelDigest": ZERO32,
                                     "detConfigHash": ZERO32},
            "InferenceCommitted": {"worker": "0x" + "ee" * 20, "commitment": ZERO32},
            "InferenceRevealed": {"worker": "0x" + "ee" * 20},
            "PoIAttested": {"validator": "0x" + "dd" * 20},
            "InferenceFinalized": {"worker": "0x" + "ee" * 20, "workerPaidWei": "1", "protocolFeeWei": "0"},
        }
        return self.event("AIVMInferenceV2", event, {**defaults[event], **args}, block=block, log_index=log_index,
                          challenge_id=cid)

    def binding(self, cid: int, subject: str, request_id: int, task_id: str, *, block: int, log_index: int = 0) -> str:
        return self.event("ChallengeTaskRegistry", "BindingRecorded", {
            "challengeId": str(cid), "subject": subject.lower(), "requestId": str(request_id), "taskId": task_id,
            "modelDigest": ZERO32, "paramsHash": ZERO32, "benchmarkHash": ZERO32, "schemaVersion": 1},
            block=block, log_index=log_index)

    def job(self, kind: str, cid: int, *, at: int, **fields: Any) -> str:
        """A job event on lc.jobs as the AIVM worker and the finalizer publish them."""
        event_id = f"{kind}:{cid}:{at}"
        self.producer.publish(JOBS, str(cid), kind, {"job_id": f"job-{cid}", "challenge_id": cid, **fields},
                              event_id=event_id, occurred_at=at)
        self.published += 1
        return event_id

    def verdict(self, cid: int, subject: str, passed: bool, *, at: int, reasons: tuple[str, ...] = (),
                evaluator: str = "apple:stream") -> str:
        event_id = f"verdict:{cid}:{subject.lower()}:{at}"
        self.producer.publish(VERDICTS, str(cid), "VerdictIssued", {
            "challenge_id": cid, "subject": subject, "pass": passed, "score": 1.0 if passed else 0.0,
            "reasons": list(reasons), "metadata_json": None, "evaluator": evaluator, "evidence_hash": f"0x{at:x}",
            "evidence_at": at, "trigger_event_id": f"evidence:{at}"}, event_id=event_id, occurred_at=at)
        self.published += 1
        return event_id


def registration_document(cid: int, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": cid, "subject": CREATOR, "model_id": "fitness.steps@1", "title": f"Challenge {cid}",
        "description": "walk", "tx_hash": tx_hash(f"create:{cid}"),
        "params": {"rule": {"challengeType": "steps", "period": {"start": "2026-01-01T00:00:00Z",
                                                                  "end": "2026-01-08T00:00:00Z", "timezone": "UTC"},
                            "conditions": [{"metric": "steps", "op": ">=", "value": 1000}]}},
        "timeline": {"startsAt": "2026-01-01T00:00:00.000Z", "endsAt": "2026-01-08T00:00:00.000Z",
                     "proofDeadline": "2026-01-09T00:00:00.000Z"},  # stored as given: the web app's form
        "funds": {"stake": "0.1", "currency": {"type": "NATIVE", "symbol": "ETH"}},
        "options": {"category": "fitness", "mode": "threshold"},
    }
    document.update(overrides)
    return document


def start_projector(settings: Settings) -> tuple[Projector, Background]:
    projector = Projector(settings, all_projections())
    return projector, Background(projector.run, projector.stop.set)


def projected(settings: Settings) -> int:
    with psycopg.connect(settings.pg_dsn) as conn:
        return int(conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets").fetchone()[0])


def wait_projected(settings: Settings, count: int) -> None:
    wait_for(lambda: projected(settings) >= count, what=f"{count} messages projected")


def rows(settings: Settings, query: str, params: tuple = (), schema: str = "public") -> list[tuple]:
    with psycopg.connect(settings.pg_dsn, options=f"-c search_path={schema}") as conn:
        return conn.execute(query, params).fetchall()


CHALLENGES_SNAPSHOT = """SELECT id, title, description, subject, tx_hash, model_id, model_hash, params, proof, timeline,
    funds, options, status, chain_outcome, registry_status, registry_tx_hash, registry_error, created_at, updated_at
    FROM challenges ORDER BY id"""
PARTICIPANTS_SNAPSHOT = """SELECT challenge_id, subject, tx_hash, joined_at, source, created_at, updated_at
    FROM participants ORDER BY challenge_id, subject"""
CLAIMS_SNAPSHOT = """SELECT challenge_id, subject, claim_type, amount_wei, bucket_id, tx_hash, block_number, source,
    metadata, claimed_at, created_at, updated_at FROM claims ORDER BY challenge_id, subject, claim_type"""
FACTS_SNAPSHOT = "SELECT event_id, removed FROM chain_events ORDER BY event_id"
STATE_SNAPSHOT = "SELECT key, value FROM indexer_state ORDER BY key"


def snapshot(settings: Settings, schema: str = "public") -> dict[str, list[tuple]]:
    return {name: rows(settings, query, schema=schema) for name, query in (
        ("challenges", CHALLENGES_SNAPSHOT), ("participants", PARTICIPANTS_SNAPSHOT), ("claims", CLAIMS_SNAPSHOT),
        ("chain_events", FACTS_SNAPSHOT), ("indexer_state", STATE_SNAPSHOT))}
