"""The batch reduction gives exactly the rows that applying the events one by one would give."""

from __future__ import annotations

import random

from projections.evidence import EvidenceFact, EvidenceUpsert, reduce_batch

Row = dict[str, object]


def fact(subject: str, hash_: str, t: int, raw_ref: str | None = None) -> EvidenceFact:
    return EvidenceFact(1, subject, "strava", f"[\"{hash_}\"]", hash_, raw_ref, t)


def apply_one_by_one(table: dict, facts: list[EvidenceFact]) -> None:
    for f in facts:
        row = table.get(f.key)
        if row is None:
            table[f.key] = {"hash": f.evidence_hash, "data": f.records_json, "created": f.occurred_at,
                            "updated": f.occurred_at}
        elif row["hash"] != f.evidence_hash:
            row.update(hash=f.evidence_hash, data=f.records_json, updated=f.occurred_at)


def apply_reduced(table: dict, upserts: list[EvidenceUpsert]) -> None:
    """What the two SQL upserts do with the staged rows."""
    for u in upserts:
        f, row = u.fact, table.get(u.fact.key)
        if row is None:
            table[f.key] = {"hash": f.evidence_hash, "data": f.records_json, "created": u.first_seen_at,
                            "updated": f.occurred_at}
        elif u.unconditional or row["hash"] != f.evidence_hash:
            row.update(hash=f.evidence_hash, data=f.records_json, updated=f.occurred_at)


def test_equal_hash_changes_nothing_and_a_new_hash_replaces() -> None:
    upserts = reduce_batch([fact("0xA", "h1", 1), fact("0xa", "h1", 2), fact("0xA", "h2", 3), fact("0xA", "h2", 4)])
    assert len(upserts) == 1
    (u,) = upserts
    assert (u.fact.evidence_hash, u.fact.occurred_at, u.first_seen_at, u.unconditional) == ("h2", 3, 1, True)


def test_a_batch_without_change_is_conditional_on_the_stored_hash() -> None:
    (u,) = reduce_batch([fact("0xA", "h1", 5), fact("0xA", "h1", 6)])
    assert (u.fact.occurred_at, u.unconditional) == (5, False)


def test_any_split_into_batches_gives_the_one_by_one_rows() -> None:
    rng = random.Random(606)
    for _trial in range(300):
        facts = [fact(rng.choice(["0xA", "0xa", "0xB"]), rng.choice(["h1", "h2", "h3"]), t) for t in range(12)]
        expected: dict = {}
        apply_one_by_one(expected, facts)
        actual: dict = {}
        cuts = sorted(rng.sample(range(1, len(facts)), rng.randint(0, 4)))
        for start, end in zip([0, *cuts], [*cuts, len(facts)], strict=True):
            apply_reduced(actual, reduce_batch(facts[start:end]))
        assert actual == expected, facts
