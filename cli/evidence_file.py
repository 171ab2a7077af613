"""`lc ingest evidence FILE`: evidence from a JSON file, published as EvidenceSubmitted events.

The file holds one object or a list of objects: challenge_id, subject, provider, records (the
normalized records), and optionally evidence_hash and raw_ref. It passes the same door as the other
intakes: the JSON through domain.untrusted (bounded depth and size, finite numbers, no NUL), the
challenge id within a bigint, each record through domain.evidence_records (an impossible record is
left out, with a note), and the event through domain.evidence's check, so whatever is published is
processable downstream. Without evidence_hash it is computed as the collector or the uploads API
would: keccak256 of the provider's canonical JSON (spec/evidence.md §4.3) for an API provider, the
upload hash (records sorted by activity_id) for apple, garmin and googlefit. A file with any item
that cannot be published is refused whole (`EvidenceFileError`, one line), before anything is sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.evidence import validate
from domain.evidence_records import screen_records
from domain.untrusted import INT64_MAX, UntrustedInput, check_int, loads
from eventlog.producer import EventProducer
from eventlog.topics import EVIDENCE
from indexers.providers.uploads.detect import evidence_hash_for

MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_TEXT_CHARS = 200


class EvidenceFileError(ValueError):
    """The file cannot be published; the message names the item and the reason in one line."""


@dataclass(frozen=True)
class EvidenceInput:
    challenge_id: int
    subject: str
    provider: str
    records: list[Any]
    evidence_hash: str
    raw_ref: str | None = None
    dropped: list[str] = field(default_factory=list)  # records left out as impossible, with the reason

    @property
    def event_id(self) -> str:
        identity = f"{self.challenge_id}:{self.subject.lower()}:{self.provider}:{self.evidence_hash}"
        return "evidence:" + hashlib.sha256(identity.encode()).hexdigest()

    def payload(self) -> dict[str, Any]:
        return {"challenge_id": self.challenge_id, "subject": self.subject, "provider": self.provider,
                "records_json": json.dumps(self.records, separators=(",", ":"), ensure_ascii=False),
                "evidence_hash": self.evidence_hash, "raw_ref": self.raw_ref}


def hash_of(provider: str, records: list[Any]) -> str:
    """The evidence hash the collector (API providers) or the uploads API (upload providers) gives."""
    try:
        return evidence_hash_for(provider, records)
    except ValueError as exc:  # no rule for the provider, or more than one evidence fact may carry
        raise EvidenceFileError(str(exc)) from None


def _text(item: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = item.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT_CHARS:
        raise EvidenceFileError(f"{name} must be a non-empty string of at most {MAX_TEXT_CHARS} characters")
    return value.strip()


def _evidence_input(item: object) -> EvidenceInput:
    if not isinstance(item, dict):
        raise EvidenceFileError("an item is a JSON object")
    missing = {"challenge_id", "subject", "provider", "records"} - set(item)
    if missing:
        raise EvidenceFileError(f"missing {', '.join(sorted(missing))}")
    try:
        challenge_id = check_int("challenge_id", item["challenge_id"], 1, INT64_MAX)
    except UntrustedInput as exc:
        raise EvidenceFileError(str(exc)) from None
    subject, provider = _text(item, "subject", required=True), _text(item, "provider", required=True)
    assert subject is not None and provider is not None
    if not isinstance(item["records"], list):
        raise EvidenceFileError("records must be a JSON array")
    screened = screen_records(item["records"])
    given_hash = _text(item, "evidence_hash", required=False)
    evidence = EvidenceInput(
        challenge_id=challenge_id, subject=subject, provider=provider, records=screened.kept,
        evidence_hash=given_hash if given_hash and not screened.dropped else hash_of(provider, screened.kept),
        raw_ref=_text(item, "raw_ref", required=False), dropped=[str(note) for note in screened.dropped],
    )
    try:
        validate(evidence.payload(), 0)  # what every consumer of lc.evidence will check
    except ValueError as exc:
        raise EvidenceFileError(str(exc)) from None
    return evidence


def read_evidence_file(path: Path) -> list[EvidenceInput]:
    """Every item of the file, checked; EvidenceFileError (naming the item) for the first that is not."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise EvidenceFileError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
        document = loads(path.read_bytes(), max_bytes=MAX_FILE_BYTES)
    except OSError as exc:
        raise EvidenceFileError(f"{path}: {exc.strerror or exc}") from None
    except UntrustedInput as exc:
        raise EvidenceFileError(f"{path}: {exc}") from None
    items = document if isinstance(document, list) else [document]
    inputs = []
    for n, item in enumerate(items):
        try:
            inputs.append(_evidence_input(item))
        except EvidenceFileError as exc:
            raise EvidenceFileError(f"{path} item {n}: {exc}") from None
    return inputs


def publish_evidence(producer: EventProducer, evidence: EvidenceInput) -> None:
    producer.publish(EVIDENCE, str(evidence.challenge_id), "EvidenceSubmitted", evidence.payload(),
                     event_id=evidence.event_id)
