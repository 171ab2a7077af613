"""The evidence write: a batch of new keys is a plain insert, a batch touching stored keys falls back to the
upserts, and the rows are the same either way (and after the fallback's skipped batches)."""

from __future__ import annotations

from cli.settings import Settings
from domain.evidence import EvidenceFact
from projections.evidence import EvidenceProjection, EvidenceUpsert
from projections.framework import connect


def upsert(challenge: int, evidence_hash: str, at: int, *, raw_ref: str | None = None) -> EvidenceUpsert:
    fact = EvidenceFact(challenge_id=challenge, subject="0x" + "ab" * 20, provider="strava",
                        records_json='[{"n":1}]', evidence_hash=evidence_hash, raw_ref=raw_ref, occurred_at=at)
    return EvidenceUpsert(fact, at, False)


def rows(settings: Settings) -> list[tuple]:
    with connect(settings.pg_dsn) as conn:
        return conn.execute("SELECT challenge_id, evidence_hash, raw_ref, extract(epoch FROM created_at)::bigint,"
                            " extract(epoch FROM updated_at)::bigint FROM evidence ORDER BY challenge_id").fetchall()


def test_new_keys_insert_and_stored_keys_fall_back_to_the_upserts(settings: Settings) -> None:
    projection = EvidenceProjection()
    with connect(settings.pg_dsn) as conn:
        with conn.transaction():
            projection.write(conn, [upsert(1, "0x01", 1_000, raw_ref="r1"), upsert(2, "0x02", 2_000)])
        assert projection._skip == 0  # the insert went through
        with conn.transaction():  # challenge 1 is stored: the insert fails, the upserts apply the batch
            projection.write(conn, [upsert(1, "0x11", 3_000), upsert(3, "0x03", 3_000)])
        assert projection._skip == 1
        with conn.transaction():  # skipped straight to the upserts: an equal hash changes nothing
            projection.write(conn, [upsert(2, "0x02", 9_000), upsert(4, "0x04", 4_000)])
        assert projection._skip == 0
    assert rows(settings) == [(1, "0x11", "r1", 1, 3), (2, "0x02", None, 2, 2), (3, "0x03", None, 3, 3),
                              (4, "0x04", None, 4, 4)]
