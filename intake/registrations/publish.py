"""Publishing a registration, or refusing it to lc.dlq: the one path the CLI and the HTTP stage share."""

from __future__ import annotations

from domain.registration import EVENT_TYPE, Registration
from eventlog.producer import EventProducer
from eventlog.topics import CHALLENGES_REGISTERED

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
