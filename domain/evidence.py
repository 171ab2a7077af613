"""Evidence facts: what an EvidenceSubmitted event must hold to be accepted by every stage alike
(the evidence projection, the evaluator), and its parsed records.

The limits are the pipeline's one set: an intake checks them before it publishes (`check_size`), the
consuming stages check them again when they read (`parse`), and lc.evidence's `max.message.bytes`
is derived from them (eventlog/topics.py), so whatever an intake accepts fits on the topic and is
processed downstream. They are sized for ten years of daily totals: an Apple export gives up to five
daily records (steps, walking, cycling and swimming distance, active energy) plus its workouts, about
0.5 KB each (docs/decisions.md, "Large evidence: one fact, limits raised to ten years").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from domain import untrusted

MAX_RECORDS = 40_000
MAX_DATA_BYTES = 20 * 1024 * 1024  # records_json, UTF-8
MAX_FIELD_CHARS = 1024  # subject, provider, evidence_hash, raw_ref
# the whole event: records, the other fields and the envelope (event id, producer) with room to spare
MAX_EVENT_BYTES = MAX_DATA_BYTES + 1024 * 1024


class EvidenceTooLarge(ValueError):
    """More records, or more bytes of them, than one evidence fact may carry."""


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


def check_size(record_count: int, data_bytes: int) -> None:
    """Raise EvidenceTooLarge unless `record_count` records of `data_bytes` (their JSON, UTF-8) fit."""
    if record_count > MAX_RECORDS:
        raise EvidenceTooLarge(f"{record_count} records exceed the limit of {MAX_RECORDS}")
    if data_bytes > MAX_DATA_BYTES:
        raise EvidenceTooLarge(f"records of {data_bytes} bytes exceed the limit of {MAX_DATA_BYTES}")


def validate(payload: Mapping[str, Any], occurred_at: int) -> EvidenceFact:
    """The evidence fact of an EvidenceSubmitted payload, or ValueError with the reason it is not acceptable."""
    return parse(payload, occurred_at)[0]


def _field(payload: Mapping[str, Any], name: str) -> str:
    value = payload[name]
    if not value.strip():
        raise ValueError(f"{name} is empty")
    if len(value) > MAX_FIELD_CHARS:
        raise ValueError(f"{name} is longer than {MAX_FIELD_CHARS} characters")
    untrusted.check_text(value, name)
    return value


def parse(payload: Mapping[str, Any], occurred_at: int) -> tuple[EvidenceFact, list[object]]:
    """`validate`, also returning the parsed records (for a stage that reads them: parsed once)."""
    p = payload
    if p["challenge_id"] < 0:
        raise ValueError(f"challenge_id must be >= 0, got {p['challenge_id']}")
    subject, provider, evidence_hash = _field(p, "subject"), _field(p, "provider"), _field(p, "evidence_hash")
    raw_ref = p["raw_ref"]
    if raw_ref is not None:
        if len(raw_ref) > MAX_FIELD_CHARS:
            raise ValueError(f"raw_ref is longer than {MAX_FIELD_CHARS} characters")
        untrusted.check_text(raw_ref, "raw_ref")
    records_json = p["records_json"]
    # a character is at most 4 UTF-8 bytes: only a long text needs encoding to be measured
    if len(records_json) * 4 > MAX_DATA_BYTES:
        check_size(0, len(records_json.encode(errors="surrogatepass")))
    try:
        records = untrusted.loads(records_json)
    except untrusted.UntrustedInput as exc:
        raise ValueError(f"records_json is not acceptable JSON: {exc}") from None
    if not isinstance(records, list):
        raise ValueError("records_json is not a JSON array")
    check_size(len(records), 0)
    fact = EvidenceFact(
        challenge_id=p["challenge_id"], subject=subject, provider=provider, records_json=records_json,
        evidence_hash=evidence_hash, raw_ref=raw_ref, occurred_at=occurred_at,
    )
    return fact, records
