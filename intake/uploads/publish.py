"""Accepted uploads as `EvidenceSubmitted` facts on `lc.evidence`, keyed by challenge id."""

from __future__ import annotations

from eventlog.producer import EventProducer
from eventlog.topics import EVIDENCE
from indexers.providers.evidence_hash import js_stringify
from intake.settings import IntakeSettings
from intake.uploads.accepted import AcceptedUpload, Publish, Refuse, RefusedUpload

PRODUCER_NAME = "lc-uploads"
# Ten years of daily records make a records_json of several MB (about 0.5 KB a record). Every
# producer lets messages up to the largest topic limit through (eventlog/producer.py), lc.evidence
# takes up to domain/evidence.py's limits (eventlog/topics.py), and the parser refuses what exceeds
# them; zstd only makes such an event small on the wire and on disk (about a tenth of its size).
PRODUCER_CONFIG = {"compression.type": "zstd"}


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


def make_publisher(settings: IntakeSettings) -> Publish:
    return publish_with(EventProducer(settings, PRODUCER_NAME, extra_config=dict(PRODUCER_CONFIG)))


def dead_letter_with(producer: EventProducer) -> Refuse:
    """A refuse callback: the refused upload's reason, origin and its first bytes (DEAD_LETTER_BYTES) to lc.dlq."""

    def refuse(upload: RefusedUpload) -> None:
        shown = "" if len(upload.head) == upload.size else f"; first {len(upload.head)} of {upload.size} bytes kept"
        producer.dead_letter(
            stage=PRODUCER_NAME, reason=f"{upload.reason} (sha256 {upload.sha256}{shown})",
            source_topic="uploads", source_key=f"{upload.challenge_id}:{upload.subject.lower()}:{upload.provider}",
            original=upload.head,
        )
        producer.flush()

    return refuse


def make_dead_letterer(settings: IntakeSettings) -> Refuse:
    return dead_letter_with(EventProducer(settings, f"{PRODUCER_NAME}-dlq"))
