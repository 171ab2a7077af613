"""Input events of the stream processors, read from their Avro payloads into the pure facts.

Each reader raises `ValueError` with the reason when the input is malformed, so the stage can send it
to lc.dlq and carry on.
"""

from __future__ import annotations

import json
from typing import Any

from domain.challenge_state import ChallengeFact, ChallengeRegistered, challenge_fact_from_chain
from domain.evidence import EvidenceFact
from domain.evidence import parse as parse_evidence
from domain.job_state import ChainFact, chain_fact_from_event
from eventlog.consumer import Received

__all__ = [
    "EvidenceFact", "challenge_fact", "evidence_fact", "job_chain_fact", "registration",
]


def evidence_fact(received: Received) -> tuple[EvidenceFact, list[object]]:
    """The evidence projection's validation (the same input is refused by every stage alike), and the records."""
    try:
        return parse_evidence(received.event.payload, received.event.occurred_at)
    except KeyError as exc:
        raise ValueError(f"missing field {exc}") from exc


def _json_object(payload: dict[str, Any], name: str, *, required: bool) -> Any:
    text = payload.get(name)
    if text is None:
        if required:
            raise ValueError(f"{name} is missing")
        return None
    try:
        value = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{name} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{name} is not a JSON object")
    return value


def registration(received: Received) -> ChallengeRegistered:
    """A ChallengeRegistered event as the challenge fold reads it; a malformed rule is refused."""
    payload = received.event.payload
    challenge_id = payload.get("challenge_id")
    if not isinstance(challenge_id, int) or challenge_id < 0:
        raise ValueError(f"challenge_id must be an integer >= 0, got {challenge_id!r}")
    params = _json_object(payload, "params_json", required=True)
    proof = _json_object(payload, "proof_json", required=False)
    timeline = _json_object(payload, "timeline_json", required=False)
    return ChallengeRegistered(
        challenge_id=challenge_id, params=params, proof=proof, timeline=timeline,
        model_id=payload.get("model_id"), model_hash=payload.get("model_hash"), subject=payload.get("subject"),
        title=payload.get("title"),
    )


def challenge_fact(received: Received) -> ChallengeFact | None:
    """The lifecycle fact of a ChainEvent (None for other contracts' events and for retractions)."""
    p = received.event.payload
    if p.get("removed") or p.get("contract") != "ChallengePay":
        return None
    return challenge_fact_from_chain(p["event"], p["args"])


def job_chain_fact(received: Received) -> ChainFact | None:
    """The AIVM fact of a ChainEvent (None for other contracts' events and for retractions)."""
    p = received.event.payload
    if p.get("removed") or p.get("contract") != "AIVMInferenceV2":
        return None
    return chain_fact_from_event(received.event.event_id, p["event"], p["args"])
