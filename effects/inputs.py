"""Consumed events -> the writers' typed inputs (lc.jobs, lc.chain.events, lc.challenges.registered).

Each reader returns (challenge id, input) or None for events the writers do not read; a malformed
registration raises ValueError (the stage sends it to lc.dlq).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain import job_state as js
from effects.request_plan import RequestRef
from effects.worker_state import BindingRecorded, BindingRefused, InferenceFinalizedFact, RequestSent
from eventlog.consumer import Received
from eventlog.processing.inputs import challenge_fact, registration
from eventlog.topics import CHAIN_EVENTS, CHALLENGES_REGISTERED, JOBS


@dataclass(frozen=True)
class ProofDone:
    """ProofSubmitted."""

    event_id: str
    participant: str
    ok: bool


@dataclass(frozen=True)
class ProofRefused:
    """ProofFailed."""

    event_id: str
    participant: str
    error: str
    attempt: int
    final: bool


@dataclass(frozen=True)
class FinalizeDone:
    """FinalizeSent."""

    event_id: str
    outcome: int


@dataclass(frozen=True)
class FinalizeRefused:
    """FinalizeFailed."""

    event_id: str
    error: str
    chain_time: int
    attempt: int


@dataclass(frozen=True)
class RegistryWritten:
    """RegistryWriteRecorded: the registry writer's outcome for a challenge."""

    event_id: str
    status: str
    attempt: int
    final: bool


@dataclass(frozen=True)
class RegistryRetry:
    """RegistryRetryRequested: an operator re-armed the registry write of a challenge."""

    event_id: str
    after_attempt: int
    operator: str
    reason: str


@dataclass(frozen=True)
class WinnerFact:
    """ChallengePay.WinnerMarked."""

    event_id: str
    participant: str
    removed: bool


@dataclass(frozen=True)
class BindingFact:
    """ChallengeTaskRegistry.BindingRecorded."""

    event_id: str
    subject: str
    task_id: str
    removed: bool


def _job_event(event_type: str, event_id: str, p: dict[str, Any]) -> object | None:
    job_id = p.get("job_id", "")
    match event_type:
        case "JobQueued":
            return js.JobQueued(event_id, job_id, p["challenge_id"], tuple(p["participants"]), p.get("mode") or "")
        case "JobParticipantsAdded":
            return js.ParticipantsAdded(event_id, job_id, tuple(p["participants"]))
        case "JobProcessing":
            return js.JobProcessing(event_id, job_id)
        case "JobSubmitted":
            request_id = int(p["request_id"]) if p.get("request_id") is not None else None
            return js.JobSubmitted(event_id, job_id, p["task_id"], request_id, p.get("worker_address"))
        case "JobFailed":
            return js.JobFailed(event_id, job_id, p["error"])
        case "JobDead":
            return js.JobDead(event_id, job_id, p["error"])
        case "JobCanceled":
            return js.JobCanceled(event_id, job_id, p["reason"], p.get("operator"))
        case "JobExpired":
            return js.JobExpired(event_id, job_id, p["task_id"].lower(), p["error"], int(p["request_id"]))
        case "JobRequeued":
            return js.JobRequeued(event_id, job_id, p["operator"], p["reason"])
        case "JobRunRequested":
            return js.JobRunRequested(event_id, job_id, p["operator"], p["reason"])
        case "AivmRequestSent":
            return RequestSent(event_id, job_id, RequestRef(int(p["request_id"]), p["task_id"].lower()))
        case "TaskBindingRecorded":
            return BindingRecorded(event_id, job_id, p["subject"].lower(), p["task_id"].lower())
        case "TaskBindingFailed":
            return BindingRefused(event_id, job_id, p["subject"].lower(), int(p["attempt"]), p["task_id"].lower())
        case "ProofSubmitted":
            return ProofDone(event_id, p["participant"].lower(), bool(p["ok"]))
        case "ProofFailed":
            return ProofRefused(event_id, p["participant"].lower(), p["error"], int(p["attempt"]), bool(p["final"]))
        case "FinalizeSent":
            return FinalizeDone(event_id, int(p["outcome"]))
        case "FinalizeFailed":
            return FinalizeRefused(event_id, p["error"], int(p["chain_time"]), int(p["attempt"]))
    return None


def _chain_event(received: Received) -> object | None:
    p = received.event.payload
    contract, name, args = p.get("contract"), p.get("event"), p.get("args") or {}
    removed = bool(p.get("removed"))
    event_id = received.event.event_id
    if contract == "AIVMInferenceV2" and name == "InferenceFinalized":
        return InferenceFinalizedFact(event_id, str(args["taskId"]).lower(), int(p["block_timestamp"]), removed)
    if contract == "ChallengePay" and name == "WinnerMarked":
        return WinnerFact(event_id, str(args["participant"]).lower(), removed)
    if contract == "ChallengeTaskRegistry" and name == "BindingRecorded":
        return BindingFact(event_id, str(args["subject"]).lower(), str(args["taskId"]).lower(), removed)
    return challenge_fact(received)


def _challenge_of(received: Received) -> int | None:
    p = received.event.payload
    for value in (p.get("challenge_id"), received.key):
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            continue
    return None


def read_input(received: Received) -> tuple[int, object] | None:
    """(challenge id, typed input) of a consumed event; None for what the writers do not read."""
    event = received.event
    item: object | None = None
    if received.topic == JOBS:
        item = _job_event(event.event_type, event.event_id, event.payload)
    elif received.topic == CHAIN_EVENTS and event.event_type == "ChainEvent":
        item = _chain_event(received)
    elif received.topic == CHALLENGES_REGISTERED and event.event_type == "ChallengeRegistered":
        item = registration(received)
    elif received.topic == CHALLENGES_REGISTERED and event.event_type == "RegistryWriteRecorded":
        p = event.payload
        item = RegistryWritten(event.event_id, p["status"], int(p["attempt"]), bool(p["final"]))
    elif received.topic == CHALLENGES_REGISTERED and event.event_type == "RegistryRetryRequested":
        p = event.payload
        item = RegistryRetry(event.event_id, int(p["after_attempt"]), p["operator"], p["reason"])
    if item is None:
        return None
    challenge_id = _challenge_of(received)
    return (challenge_id, item) if challenge_id is not None else None
