"""`evidence`: the newest evidence per (challenge, lower(subject), provider).

Semantics, event by event in topic order: an event whose hash differs from the row's replaces
data, hash and raw_ref (raw_ref kept when the new one is null) and sets updated_at to the event's
time; an event whose hash equals the row's changes nothing; the first event creates the row with
created_at = updated_at = its time. Times come from the events, so a rebuild gives the same rows.

A batch is reduced per key in Python first (`reduce_batch`) so that one COPY plus two set-based
upserts give exactly the rows the event-by-event rule would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import psycopg

from domain.evidence import EvidenceFact, validate
from eventlog.consumer import Received, Reject
from eventlog.topics import EVIDENCE


class EvidenceUpsert(NamedTuple):
    """The net effect of a batch's events on one row."""

    fact: EvidenceFact  # the event whose content the row ends with
    first_seen_at: int  # created_at if the row does not exist yet
    unconditional: bool  # the hash changed within the batch, so the row changes whatever it holds now


def reduce_batch(facts: Sequence[EvidenceFact]) -> list[EvidenceUpsert]:
    """Collapse each key's facts (in topic order) into the single upsert with the same net effect."""
    # per key: [first fact's time, setter (last fact that changed the hash), last hash, changed?]
    state: dict[tuple[int, str, str], list] = {}
    for fact in facts:
        key = fact.key
        entry = state.get(key)
        if entry is None:
            state[key] = [fact.occurred_at, fact, fact.evidence_hash, False]
        elif fact.evidence_hash != entry[2]:
            entry[1], entry[2], entry[3] = fact, fact.evidence_hash, True
    return [EvidenceUpsert(setter, first_seen, changed) for first_seen, setter, _hash, changed in state.values()]


STAGE = """CREATE TEMP TABLE IF NOT EXISTS evidence_stage (
    challenge_id bigint, subject text, provider text, data text, evidence_hash text, raw_ref text,
    created_ms bigint, updated_ms bigint, unconditional boolean) ON COMMIT DELETE ROWS"""

UPSERT = """INSERT INTO evidence AS e
        (challenge_id, subject, provider, data, evidence_hash, raw_ref, created_at, updated_at)
    SELECT challenge_id, subject, provider, data::jsonb, evidence_hash, raw_ref,
           to_timestamp(created_ms / 1000.0), to_timestamp(updated_ms / 1000.0)
    FROM evidence_stage WHERE unconditional = {unconditional}
    ON CONFLICT (challenge_id, lower(subject), provider) DO UPDATE SET
        data = EXCLUDED.data, evidence_hash = EXCLUDED.evidence_hash,
        raw_ref = COALESCE(EXCLUDED.raw_ref, e.raw_ref), updated_at = EXCLUDED.updated_at
    {condition}"""


# The batch's rows when none of their keys has a row yet: exactly what the two upserts would insert.
INSERT_NEW = """INSERT INTO evidence (challenge_id, subject, provider, data, evidence_hash, raw_ref, created_at, updated_at)
    SELECT challenge_id, subject, provider, data::jsonb, evidence_hash, raw_ref,
           to_timestamp(created_ms / 1000.0), to_timestamp(updated_ms / 1000.0)
    FROM evidence_stage"""
MAX_SKIPPED_BATCHES = 64


class EvidenceProjection:
    """A batch whose keys are all new (a first projection, a rebuild's replay, new subjects) is a plain
    INSERT, which costs PostgreSQL far less than the upserts' speculative inserts; it runs under a
    savepoint, and if a key has a row already the batch is upserted instead. After such a miss the
    next batches go straight to the upserts, a doubling number of them (at most 64), so a stream of
    updates does not pay for a failed insert per batch."""

    name = "evidence"
    topics = (EVIDENCE,)

    def __init__(self) -> None:
        self._skip = 0  # batches to upsert without trying the insert first
        self._after_miss = 1

    def prepare(self, events: Sequence[Received], reject: Reject) -> list[EvidenceUpsert] | None:
        facts = []
        for received in events:
            if received.event.event_type != "EvidenceSubmitted":
                continue
            try:
                facts.append(validate(received.event.payload, received.event.occurred_at))
            except (ValueError, KeyError) as exc:
                reject(received, f"invalid evidence: {exc}")
        return reduce_batch(facts) if facts else None

    def write(self, conn: psycopg.Connection, upserts: list[EvidenceUpsert]) -> None:
        conn.execute(STAGE)
        with conn.cursor().copy(
            "COPY evidence_stage (challenge_id, subject, provider, data, evidence_hash, raw_ref, created_ms,"
            " updated_ms, unconditional) FROM STDIN"
        ) as copy:
            for u in upserts:
                f = u.fact
                copy.write_row((f.challenge_id, f.subject, f.provider, f.records_json, f.evidence_hash, f.raw_ref,
                                u.first_seen_at, f.occurred_at, u.unconditional))
        if self._skip:
            self._skip -= 1
        else:
            try:
                with conn.transaction():
                    conn.execute(INSERT_NEW)
                self._after_miss = 1
                return
            except psycopg.errors.UniqueViolation:
                self._skip = self._after_miss
                self._after_miss = min(2 * self._after_miss, MAX_SKIPPED_BATCHES)
        conn.execute(UPSERT.format(unconditional="true", condition=""))
        conn.execute(UPSERT.format(
            unconditional="false", condition="WHERE e.evidence_hash IS DISTINCT FROM EXCLUDED.evidence_hash"
        ))
