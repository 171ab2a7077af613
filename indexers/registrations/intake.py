"""Publishing a registration, or refusing it to lc.dlq: the one path the CLI and the HTTP stage share."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from eventlog.producer import EventProducer
from eventlog.topics import CHALLENGES_REGISTERED
from indexers.registrations.registration import InvalidRegistration, Registration, validate_registration

EVENT_TYPE = "ChallengeRegistered"
CLI_STAGE = "lc-registrations-cli"
API_STAGE = "lc-registrations-api"


def publish_registration(producer: EventProducer, registration: Registration, *, source: str,
                         registered_by: str | None, occurred_at: int) -> str:
    """Publish and flush (the caller answers only once the broker has it); returns the event id."""
    producer.publish(
        CHALLENGES_REGISTERED, str(registration.challenge_id), EVENT_TYPE,
        registration.to_payload(source=source, registered_by=registered_by),
        event_id=registration.event_id, occurred_at=occurred_at,
    )
    producer.flush()
    return registration.event_id


def refuse(producer: EventProducer, *, stage: str, reason: str, original: bytes, key: str | None = None) -> None:
    """Route refused input to lc.dlq with the reason and its original bytes, durably."""
    producer.dead_letter(stage=stage, reason=reason, source_topic=CHALLENGES_REGISTERED, source_key=key,
                         original=original)
    producer.flush()


def registration_from_payload(payload: Mapping[str, Any]) -> Registration:
    """Read a ChallengeRegistered payload back, validated again: the topic is only as trusted as its writers."""
    def parsed(name: str) -> Any:
        text = payload.get(name)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise InvalidRegistration(f"{name} is not JSON: {exc}") from exc

    document = {
        "id": payload["challenge_id"], "subject": payload["subject"], "model_id": payload["model_id"],
        "model_hash": payload.get("model_hash"), "title": payload.get("title"),
        "description": payload.get("description"), "tx_hash": payload.get("tx_hash"),
        "params": parsed("params_json"), "proof": parsed("proof_json"), "timeline": parsed("timeline_json"),
        "funds": parsed("funds_json"), "options": parsed("options_json"),
    }
    return validate_registration({k: v for k, v in document.items() if v is not None})
