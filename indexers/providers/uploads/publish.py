"""Accepted uploads as `EvidenceSubmitted` facts on `lc.evidence`, keyed by challenge id."""

from __future__ import annotations

from eventlog.config import Settings
from eventlog.producer import EventProducer
from eventlog.topics import EVIDENCE
from indexers.providers.evidence_hash import js_stringify
from indexers.providers.uploads.accepted import AcceptedUpload, Publish

PRODUCER_NAME = "lc-uploads"


def evidence_payload(upload: AcceptedUpload) -> dict[str, object]:
    return {
        "challenge_id": upload.challenge_id,
        "subject": upload.subject,
        "provider": upload.provider,
        "records_json": js_stringify(upload.records),
        "evidence_hash": upload.evidence_hash,
        "raw_ref": upload.raw_ref,
    }


def publish_with(producer: EventProducer) -> Publish:
    """A publish callback on an existing producer; returns only once the broker has the event."""

    def publish(upload: AcceptedUpload) -> None:
        producer.publish(EVIDENCE, str(upload.challenge_id), "EvidenceSubmitted", evidence_payload(upload),
                         event_id=upload.event_id)
        producer.flush()

    return publish


def make_publisher(settings: Settings) -> Publish:
    return publish_with(EventProducer(settings, PRODUCER_NAME))
