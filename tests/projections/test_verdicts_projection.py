"""The verdicts projection: verdict upserts, created_at = first evaluation, ranking flips."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from kits.background import Background, wait_for

from cli.settings import Settings
from eventlog.producer import EventProducer
from eventlog.topics import VERDICTS
from projections.framework import Projector
from projections.verdicts import VerdictsProjection

A, B = "0xAAaa000000000000000000000000000000000001", "0xbbbb000000000000000000000000000000000002"


def verdict(producer: EventProducer, cid: int, subject: str, pass_: bool, score: float | None, at: int,
            reasons: tuple[str, ...] = ()) -> None:
    producer.publish(VERDICTS, str(cid), "VerdictIssued", {
        "challenge_id": cid, "subject": subject, "pass": pass_, "score": score, "reasons": list(reasons),
        "metadata_json": '{"providers":["fitbit"]}', "evaluator": "fitbit:stream", "evidence_hash": f"0x{at:x}",
        "evidence_at": at, "trigger_event_id": f"ev{at}"}, event_id=f"v:{cid}:{subject}:{at}", occurred_at=at)


def ranking(producer: EventProducer, cid: int, outcomes: list[tuple[str, bool, str | None]], at: int) -> None:
    producer.publish(VERDICTS, str(cid), "RankingPublished", {
        "challenge_id": cid, "top_n": 1, "chain_time": at // 1000,
        "outcomes": [{"subject": s, "rank": n, "pass": p, "score": None, "reason": r}
                     for n, (s, p, r) in enumerate(outcomes, start=1)]}, event_id=f"r:{cid}:{at}", occurred_at=at)


def rows(settings: Settings) -> dict[str, tuple]:
    with psycopg.connect(settings.pg_dsn) as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT subject, pass, reasons, score::float8, evaluator, metadata, created_at, updated_at"
            " FROM verdicts ORDER BY subject").fetchall()}


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def offsets(settings: Settings) -> int:
    with psycopg.connect(settings.pg_dsn) as conn:
        return int(conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets").fetchone()[0])


def project(settings: Settings, until_offset: int) -> None:
    projector = Projector(settings, [VerdictsProjection()])
    worker = Background(projector.run, projector.stop.set)
    try:
        wait_for(lambda: offsets(settings) >= until_offset, what=f"{until_offset} events projected")
    finally:
        worker.stop()


def test_verdicts_rankings_and_reevaluation_after_ranking(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        verdict(producer, 3, A, True, 100, 1_000)
        verdict(producer, 3, A, True, 120, 2_000)  # re-evaluation: created_at stays
        verdict(producer, 3, B, False, None, 3_000, ("No evaluator registered for provider \"x\"",))
    project(settings, 3)
    got = rows(settings)
    assert got[A][:4] == (True, [], 120.0, "fitbit:stream")
    assert got[A][4] == {"providers": ["fitbit"]}
    assert (got[A][5], got[A][6]) == (at(1_000), at(2_000))
    assert got[B][:3] == (False, ['No evaluator registered for provider "x"'], None)

    with EventProducer(settings, "test") as producer:
        ranking(producer, 3, [(B.lower(), False, "No score to rank"), (A.lower(), False, "Ranked below top-N cutoff")],
                5_000)
        verdict(producer, 3, A, True, 130, 6_000)  # after the ranking: score moves, the cut stays
        ranking(producer, 3, [(A.lower(), True, None), (B.lower(), False, "No score to rank")], 7_000)
        verdict(producer, 3, B, False, None, 8_000, ("No score to rank",))
    project(settings, 7)
    got = rows(settings)
    assert got[A][:3] == (True, [], 130.0)
    assert got[A][6] == at(7_000)  # flipped back to pass by the second ranking
    assert got[B][:2] == (False, ["No score to rank"])
    assert (got[B][5], got[B][6]) == (at(3_000), at(8_000))


def test_batch_boundaries_do_not_change_the_rows(settings: Settings) -> None:
    with EventProducer(settings, "test") as producer:
        verdict(producer, 4, A, True, 1, 1_000)
        ranking(producer, 4, [(A.lower(), False, "Ranked below top-N cutoff")], 2_000)
        verdict(producer, 4, A, True, 2, 3_000)
        verdict(producer, 4, B, True, 5, 4_000)
        ranking(producer, 4, [(B.lower(), True, None), (A.lower(), False, "Ranked below top-N cutoff")], 5_000)
    project(settings, 5)
    one_batch = rows(settings)
    with psycopg.connect(settings.pg_dsn) as conn:
        conn.execute("TRUNCATE verdicts, verdict_rankings, projection_offsets")
    projector = Projector(settings, [VerdictsProjection()], batch_size=1)
    worker = Background(projector.run, projector.stop.set)
    try:
        wait_for(lambda: offsets(settings) >= 5, what="5 events projected one by one")
    finally:
        worker.stop()
    assert rows(settings) == one_batch
    assert one_batch[A][:3] == (False, ["Ranked below top-N cutoff"], 2.0)
    assert one_batch[A][6] == at(3_000)
