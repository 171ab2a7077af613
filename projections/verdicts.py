"""`verdicts`: the evaluator's verdicts and the dispatcher's competitive rankings (lc.verdicts).

Rules, event by event in topic order:
- VerdictIssued upserts the (challenge, subject) row: score, metadata, evaluator, evidence hash,
  and pass/reasons — unless the challenge has been ranked, in which case pass/reasons stay the
  ranking's (a re-evaluation cannot undo the top-N cut, docs/compatibility.md K3).
  created_at = the first evaluation's time, updated_at = this event's time.
- RankingPublished sets pass/reasons of every ranked subject (matched case-insensitively);
  updated_at moves only for rows whose pass or reasons change.
Times are the events' `occurred_at`, so a rebuild gives the same rows. A batch is applied in
Python over the current rows of the challenges it touches, then written with one upsert.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import psycopg

from eventlog.consumer import Received, Reject
from eventlog.topics import VERDICTS


@dataclass(frozen=True)
class Outcome:
    rank: int
    pass_: bool
    reason: str | None
    event_id: str
    ranked_at: datetime

    @property
    def reasons(self) -> list[str]:
        return [] if self.reason is None else [self.reason]


@dataclass(frozen=True)
class Row:
    challenge_id: int
    subject: str
    pass_: bool
    reasons: list[str]
    evidence_hash: str
    evaluator: str
    created_at: datetime
    updated_at: datetime
    score: float | None
    metadata: Any


def _at(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


class VerdictsProjection:
    name = "verdicts"
    topics = (VERDICTS,)

    def prepare(self, events: Sequence[Received], reject: Reject) -> list[Received] | None:
        kept = [r for r in events if r.event.event_type in ("VerdictIssued", "RankingPublished")]
        return kept or None

    def write(self, conn: psycopg.Connection, events: list[Received]) -> None:
        challenges = sorted({r.event.payload["challenge_id"] for r in events})
        rows = _load_rows(conn, challenges)
        rankings = _load_rankings(conn, challenges)
        changed: set[tuple[int, str]] = set()
        ranked_now: set[int] = set()
        for received in events:
            p, at = received.event.payload, _at(received.event.occurred_at)
            cid = p["challenge_id"]
            if received.event.event_type == "VerdictIssued":
                key = (cid, p["subject"])
                outcome = rankings.get(cid, {}).get(p["subject"].lower())
                previous = rows.get(key)
                rows[key] = Row(
                    cid, p["subject"], outcome.pass_ if outcome else p["pass"],
                    outcome.reasons if outcome else list(p["reasons"]), p["evidence_hash"], p["evaluator"],
                    previous.created_at if previous else at, at, p["score"],
                    json.loads(p["metadata_json"]) if p["metadata_json"] is not None else None,
                )
                changed.add(key)
            else:
                ranking = {o["subject"].lower(): Outcome(o["rank"], o["pass"], o["reason"], received.event.event_id, at)
                           for o in p["outcomes"]}
                rankings[cid] = ranking
                ranked_now.add(cid)
                for key, row in list(rows.items()):
                    outcome = ranking.get(row.subject.lower()) if key[0] == cid else None
                    if outcome and (row.pass_, row.reasons) != (outcome.pass_, outcome.reasons):
                        rows[key] = replace(row, pass_=outcome.pass_, reasons=outcome.reasons, updated_at=at)
                        changed.add(key)
        _write_rows(conn, [rows[key] for key in sorted(changed)])
        _write_rankings(conn, {cid: rankings[cid] for cid in sorted(ranked_now)})


def _load_rows(conn: psycopg.Connection, challenges: list[int]) -> dict[tuple[int, str], Row]:
    cursor = conn.execute(
        """SELECT challenge_id, subject, pass, reasons, evidence_hash, evaluator, created_at, updated_at,
                  score::float8, metadata
           FROM verdicts WHERE challenge_id = ANY(%s)""", (challenges,))
    return {(r[0], r[1]): Row(*r) for r in cursor.fetchall()}


def _load_rankings(conn: psycopg.Connection, challenges: list[int]) -> dict[int, dict[str, Outcome]]:
    rankings: dict[int, dict[str, Outcome]] = {}
    for cid, subject, rank, pass_, reason, event_id, ranked_at in conn.execute(
            "SELECT challenge_id, subject_lower, rank, pass, reason, event_id, ranked_at FROM verdict_rankings"
            " WHERE challenge_id = ANY(%s)", (challenges,)).fetchall():
        rankings.setdefault(cid, {})[subject] = Outcome(rank, pass_, reason, event_id, ranked_at)
    return rankings


def _write_rows(conn: psycopg.Connection, rows: list[Row]) -> None:
    if not rows:
        return
    with conn.cursor() as cursor:
        cursor.executemany(
            """INSERT INTO verdicts (challenge_id, subject, pass, reasons, evidence_hash, evaluator, created_at,
                                     updated_at, score, metadata)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT ON CONSTRAINT verdicts_challenge_subject_uq DO UPDATE SET
                   pass = EXCLUDED.pass, reasons = EXCLUDED.reasons, evidence_hash = EXCLUDED.evidence_hash,
                   evaluator = EXCLUDED.evaluator, updated_at = EXCLUDED.updated_at, score = EXCLUDED.score,
                   metadata = EXCLUDED.metadata""",
            [(r.challenge_id, r.subject, r.pass_, r.reasons, r.evidence_hash, r.evaluator, r.created_at,
              r.updated_at, r.score, psycopg.types.json.Jsonb(r.metadata) if r.metadata is not None else None)
             for r in rows],
        )


def _write_rankings(conn: psycopg.Connection, rankings: dict[int, dict[str, Outcome]]) -> None:
    if not rankings:
        return
    conn.execute("DELETE FROM verdict_rankings WHERE challenge_id = ANY(%s)", (list(rankings),))
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO verdict_rankings (challenge_id, subject_lower, rank, pass, reason, event_id, ranked_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(cid, subject, o.rank, o.pass_, o.reason, o.event_id, o.ranked_at)
             for cid, ranking in rankings.items() for subject, o in sorted(ranking.items())],
        )
