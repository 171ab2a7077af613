"""The evaluator's verdict notifications, into the web app's shared `notifications` table.

As the original evidence evaluator wrote them (spec/evaluation.md §5.3): for a verdict of a real
challenge (id ≠ 0) by a known evaluator, one row for the subject's wallet (lower-cased), type
`challenge_finalized`, title `Evaluation passed — {title}` or `Evaluation complete — {title}` (the
challenge's registered title, else `Challenge #{id}`), data `{challengeId, tier: verdict_pass |
verdict_fail, verdictPass, deepLink}`. The original's unique index on (wallet, challengeId, tier)
made that one row per wallet, challenge and tier; so here.

`notifications` is the web app's (it writes its own alerts there and marks rows read), so this
projection only ever inserts, each notification once, keyed by the verdict: its id is derived from
(challenge, wallet, tier), and `notification_deliveries` (the pipeline's, kept across rebuilds)
records what was delivered. A replay, a rebuild or a second projector delivers nothing twice, and a
notification the web app deleted does not come back. Both tables are written in the live schema,
whatever schema the projector builds (a rebuild's scratch schema never holds them). Times are the
verdicts' event times.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import NamedTuple

import psycopg
from psycopg import sql

from eventlog.consumer import Received, Reject
from eventlog.topics import VERDICTS
from projections.ownership import LIVE_SCHEMA

VERDICT_ISSUED = "VerdictIssued"
NO_EVALUATOR = "unknown:no-evaluator"
TYPE = "challenge_finalized"
_NAMESPACE = uuid.UUID("5b0e3c52-6a7e-4d0c-9c1e-0d6c1c2a7f31")


class VerdictNotice(NamedTuple):
    challenge_id: int
    wallet: str  # lower-case
    passed: bool
    first_reason: str | None
    verdict_event_id: str
    occurred_at: int  # epoch ms

    @property
    def tier(self) -> str:
        return "verdict_pass" if self.passed else "verdict_fail"

    @property
    def notification_id(self) -> uuid.UUID:
        return uuid.uuid5(_NAMESPACE, f"{self.challenge_id}:{self.wallet}:{self.tier}")


def read_notice(received: Received) -> VerdictNotice | None:
    """The notification a VerdictIssued asks for; None when the original wrote none."""
    p = received.event.payload
    challenge_id, subject, evaluator = p["challenge_id"], p["subject"], p["evaluator"]
    if not isinstance(challenge_id, int) or not isinstance(subject, str) or not subject.strip():
        raise ValueError(f"challenge_id {challenge_id!r} / subject {subject!r} cannot name a notification")
    if challenge_id == 0 or evaluator == NO_EVALUATOR:
        return None
    reasons = p.get("reasons") or []
    return VerdictNotice(challenge_id, subject.strip().lower(), bool(p["pass"]), reasons[0] if reasons else None,
                         received.event.event_id, received.event.occurred_at)


def first_per_key(notices: Sequence[VerdictNotice]) -> list[VerdictNotice]:
    kept: dict[uuid.UUID, VerdictNotice] = {}
    for notice in notices:
        kept.setdefault(notice.notification_id, notice)
    return list(kept.values())


def notification_text(notice: VerdictNotice, title: str | None) -> tuple[str, str, dict[str, object]]:
    """(title, body, data) of the row, as the original evaluator wrote them."""
    name = title or f"Challenge #{notice.challenge_id}"
    if notice.passed:
        heading, body = f"Evaluation passed — {name}", f"Your evidence meets the rule of {name}."
    else:
        heading = f"Evaluation complete — {name}"
        body = f"Your evidence does not meet the rule of {name}" + (
            f": {notice.first_reason}" if notice.first_reason else ".")
    data = {"challengeId": str(notice.challenge_id), "tier": notice.tier, "verdictPass": notice.passed,
            "deepLink": f"lightchallengeapp://challenge/{notice.challenge_id}"}
    return heading, body, data


STAGE = """CREATE TEMP TABLE IF NOT EXISTS notifications_stage (
    id uuid, challenge_id bigint, wallet text, tier text, verdict_event_id text, title text, body text, data text,
    created_ms bigint) ON COMMIT DELETE ROWS"""

DELIVER = """WITH delivered AS (
        INSERT INTO {deliveries} (notification_id, challenge_id, wallet, tier, verdict_event_id, delivered_at)
        SELECT id, challenge_id, wallet, tier, verdict_event_id, to_timestamp(created_ms / 1000.0)
        FROM notifications_stage
        ON CONFLICT (notification_id) DO NOTHING
        RETURNING notification_id)
    INSERT INTO {notifications} (id, wallet, type, title, body, data, read, created_at)
    SELECT s.id, s.wallet, %s, s.title, s.body, s.data::jsonb, false, to_timestamp(s.created_ms / 1000.0)
    FROM notifications_stage s JOIN delivered d ON d.notification_id = s.id
    ON CONFLICT DO NOTHING"""


class NotificationsProjection:
    name = "notifications"
    topics = (VERDICTS,)

    def prepare(self, events: Sequence[Received], reject: Reject) -> list[VerdictNotice] | None:
        notices = []
        for received in events:
            if received.event.event_type != VERDICT_ISSUED:
                continue
            try:
                notice = read_notice(received)
            except (KeyError, TypeError, ValueError) as exc:
                reject(received, f"invalid verdict: {exc}")
                continue
            if notice is not None:
                notices.append(notice)
        return first_per_key(notices) or None

    def write(self, conn: psycopg.Connection, notices: list[VerdictNotice]) -> None:
        titles = dict(conn.execute(
            "SELECT challenge_id, registration->>'title' FROM challenge_registrations WHERE challenge_id = ANY(%s)",
            ([n.challenge_id for n in notices],)).fetchall())
        conn.execute(STAGE)
        with conn.cursor().copy("COPY notifications_stage FROM STDIN") as copy:
            for n in notices:
                title, body, data = notification_text(n, titles.get(n.challenge_id))
                copy.write_row((n.notification_id, n.challenge_id, n.wallet, n.tier, n.verdict_event_id, title, body,
                                json.dumps(data, separators=(",", ":")), n.occurred_at))
        conn.execute(sql.SQL(DELIVER).format(
            deliveries=sql.Identifier(LIVE_SCHEMA, "notification_deliveries"),
            notifications=sql.Identifier(LIVE_SCHEMA, "notifications")), (TYPE,))
