"""Evidence facts: what an EvidenceSubmitted event must hold to be accepted by every stage alike
(the evidence projection, the evaluator), and its parsed records."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

MAX_RECORDS = 10_000
MAX_DATA_BYTES = 5 * 1024 * 1024


class EvidenceFact(NamedTuple):
    challenge_id: int
    subject: str
    provider: str
    records_json: str
    evidence_hash: str
    raw_ref: str | None
    occurred_at: int  # epoch ms

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.challenge_id, self.subject.lower(), self.provider)


def validate(payload: Mapping[str, Any], occurred_at: int) -> EvidenceFact:
    """The evidence fact of an EvidenceSubmitted payload, or ValueError with the reason it is not acceptable."""
    return parse(payload, occurred_at)[0]


def parse(payload: Mapping[str, Any], occurred_at: int) -> tuple[EvidenceFact, list[object]]:
    """`validate`, also returning the parsed records (for a stage that reads them: parsed once)."""
    p = payload
    if p["challenge_id"] < 0:
        raise ValueError(f"challenge_id must be >= 0, got {p['challenge_id']}")
    if not p["subject"].strip():
        raise ValueError("subject is empty")
    if not p["provider"].strip():
        raise ValueError("provider is empty")
    if not p["evidence_hash"].strip():
        raise ValueError("evidence_hash is empty")
    records_json = p["records_json"]
    # a character is at most 4 UTF-8 bytes: only a long text needs encoding to be measured
    if len(records_json) * 4 > MAX_DATA_BYTES and len(records_json.encode()) > MAX_DATA_BYTES:
        raise ValueError(f"records exceed {MAX_DATA_BYTES} bytes")
    try:
        records = json.loads(records_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"records_json is not JSON: {exc}") from exc
    if not isinstance(records, list):
        raise ValueError("records_json is not a JSON array")
    if len(records) > MAX_RECORDS:
        raise ValueError(f"{len(records)} records exceed the limit of {MAX_RECORDS}")
    fact = EvidenceFact(
        challenge_id=p["challenge_id"], subject=p["subject"], provider=p["provider"],
        records_json=records_json, evidence_hash=p["evidence_hash"], raw_ref=p["raw_ref"],
        occurred_at=occurred_at,
    )
    return fact, records
