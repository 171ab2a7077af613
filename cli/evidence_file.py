"""`lc ingest evidence FILE`: evidence from a JSON file, published as EvidenceSubmitted events.

The file holds one object or a list of objects: challenge_id, subject, provider, records (the
normalized records), and optionally evidence_hash (computed as the collectors do when absent:
keccak256 of the provider's canonical JSON, spec/evidence.md §4.3) and raw_ref.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventlog.producer import EventProducer
from eventlog.topics import EVIDENCE
from indexers.providers.evidence_hash import evidence_hash


@dataclass(frozen=True)
class EvidenceInput:
    challenge_id: int
    subject: str
    provider: str
    records: list[Any]
    evidence_hash: str
    raw_ref: str | None = None

    @property
    def event_id(self) -> str:
        identity = f"{self.challenge_id}:{self.subject.lower()}:{self.provider}:{self.evidence_hash}"
        return "evidence:" + hashlib.sha256(identity.encode()).hexdigest()


def read_evidence_file(path: Path) -> list[EvidenceInput]:
    document = json.loads(path.read_text())
    items = document if isinstance(document, list) else [document]
    inputs = []
    for n, item in enumerate(items):
        missing = {"challenge_id", "subject", "provider", "records"} - set(item)
        if missing:
            raise ValueError(f"{path} item {n}: missing {', '.join(sorted(missing))}")
        records = item["records"]
        inputs.append(EvidenceInput(
            challenge_id=int(item["challenge_id"]), subject=str(item["subject"]), provider=str(item["provider"]),
            records=records, evidence_hash=item.get("evidence_hash") or evidence_hash(str(item["provider"]), records),
            raw_ref=item.get("raw_ref"),
        ))
    return inputs


def publish_evidence(producer: EventProducer, evidence: EvidenceInput) -> None:
    producer.publish(
        EVIDENCE, str(evidence.challenge_id), "EvidenceSubmitted",
        {"challenge_id": evidence.challenge_id, "subject": evidence.subject, "provider": evidence.provider,
         "records_json": json.dumps(evidence.records, separators=(",", ":"), ensure_ascii=False),
         "evidence_hash": evidence.evidence_hash, "raw_ref": evidence.raw_ref},
        event_id=evidence.event_id,
    )
