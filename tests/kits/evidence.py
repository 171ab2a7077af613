"""Building and reading evidence events in tests."""

from __future__ import annotations

import hashlib
import json

import psycopg

from eventlog.producer import EventProducer
from eventlog.topics import EVIDENCE


def publish(producer: EventProducer, challenge_id: int, subject: str, provider: str, records: list,
            *, occurred_at: int, evidence_hash: str | None = None) -> str:
    records_json = json.dumps(records, separators=(",", ":"))
    evidence_hash = evidence_hash or "0x" + hashlib.sha256(records_json.encode()).hexdigest()
    event_id = f"test:{challenge_id}:{subject.lower()}:{provider}:{evidence_hash}:{occurred_at}"
    producer.publish(
        EVIDENCE, str(challenge_id), "EvidenceSubmitted",
        {"challenge_id": challenge_id, "subject": subject, "provider": provider, "records_json": records_json,
         "evidence_hash": evidence_hash, "raw_ref": None},
        event_id=event_id, occurred_at=occurred_at,
    )
    return evidence_hash


def evidence_rows(dsn: str, schema: str = "public") -> list[tuple]:
    """The evidence table's content without the surrogate id, in a stable order."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            f"""SELECT challenge_id, lower(subject), provider, data::text, evidence_hash, raw_ref,
                       created_at, updated_at
                FROM {schema}.evidence ORDER BY challenge_id, lower(subject), provider"""
        ).fetchall()


def table_checksum(dsn: str) -> tuple[int, str]:
    rows = evidence_rows(dsn)
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()
