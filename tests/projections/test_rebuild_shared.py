"""`lc rebuild` in a database the web app shares: only the owned tables are replaced.

The web app's tables keep every row; its views over owned tables (and views over those views), its
foreign key into an owned table, its own index on one and its role's grants still work against the
rebuilt tables; objects that cannot be carried over make the rebuild refuse before anything changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from kits.background import Background
from kits.evidence import evidence_rows, publish
from kits.projections import (
    ALICE,
    BOB,
    CREATOR,
    ChainFeed,
    registration_document,
    snapshot,
    start_projector,
    wait_projected,
)

from cli.settings import Settings
from eventlog.producer import EventProducer
from projections.framework import Projector
from projections.migrate import migrate
from projections.rebuild import rebuild
from projections.registry import all_projections
from projections.swap import RebuildRefused

WEBAPP_OBJECTS = """
CREATE TABLE achievement_mints (id bigserial PRIMARY KEY, challenge_id bigint NOT NULL, recipient text NOT NULL,
                                achievement_type text NOT NULL);
CREATE TABLE reminders (id bigserial PRIMARY KEY, email text NOT NULL,
                        challenge_id bigint NOT NULL REFERENCES challenges(id), type text NOT NULL);
CREATE VIEW active_challenge_members AS
    SELECT c.id, c.title, p.subject FROM challenges c JOIN participants p ON p.challenge_id = c.id
    WHERE lower(coalesce(c.status, '')) = 'active';
CREATE VIEW active_challenge_counts WITH (security_barrier = true) AS
    SELECT id, count(*) AS members FROM active_challenge_members GROUP BY id;
COMMENT ON VIEW active_challenge_counts IS 'the leaderboard widget';
CREATE INDEX webapp_challenges_title_idx ON challenges (lower(title));
INSERT INTO achievement_mints (challenge_id, recipient, achievement_type)
    SELECT g, 'r' || g, 'completion' FROM generate_series(1, 50) g;
INSERT INTO notifications (wallet, type, title, data)
    VALUES ('0xabc', 'match_result', 'the web app''s own alert', '{"k": 1}');
"""


@pytest.fixture
def reader_role(settings: Settings) -> Iterator[str]:
    """A role of the web app's (roles are cluster-wide: a unique name, dropped afterwards)."""
    role = f"webapp_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}"')
    yield role
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')


def feed_owned_tables(settings: Settings) -> int:
    with EventProducer(settings, "test") as producer:
        feed = ChainFeed(producer)
        for cid in (30, 31):
            feed.register(registration_document(cid))
            feed.created(cid, CREATOR, block=cid)
            feed.joined(cid, ALICE, 100, block=cid + 10)
        feed.joined(30, BOB, 100, block=45)
        for cid in (30, 31):
            for n, subject in enumerate((ALICE, BOB)):
                publish(producer, cid, subject, "strava", [{"n": n}], occurred_at=1_000 + n)
        producer.flush()
        return feed.published + 4


def with_webapp_objects(settings: Settings) -> Background:
    """The owned tables projected live (the projector keeps running), then the web app's objects added."""
    projector, worker = start_projector(settings)
    wait_projected(settings, feed_owned_tables(settings))
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute(WEBAPP_OBJECTS)
    return worker


def webapp_state(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {
        "achievement_mints": conn.execute("SELECT * FROM achievement_mints ORDER BY id").fetchall(),
        "reminders": conn.execute("SELECT * FROM reminders ORDER BY id").fetchall(),
        "members": conn.execute("SELECT * FROM active_challenge_members ORDER BY id, subject").fetchall(),
        "counts": conn.execute("SELECT * FROM active_challenge_counts ORDER BY id").fetchall(),
        "notifications": conn.execute("SELECT id, wallet, type, title, data FROM notifications "
                                      "WHERE type <> 'challenge_finalized' ORDER BY id").fetchall(),
    }


def test_rebuild_keeps_the_web_apps_tables_views_keys_indexes_and_grants(settings: Settings, reader_role: str) -> None:
    worker = with_webapp_objects(settings)
    try:
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO reminders (email, challenge_id, type) VALUES ('a@x', 30, 'proof_window_open'),"
                         " ('b@x', 31, 'proof_window_open')")
            conn.execute(f'GRANT SELECT ON challenges, participants, active_challenge_counts TO "{reader_role}"')
            before = webapp_state(conn)
            old_challenges = conn.execute("SELECT 'challenges'::regclass::oid").fetchone()[0]
            assert len(before["members"]) == 5 and before["counts"] == [(30, 3), (31, 2)]  # creators included
            # a wrong row in an owned table: the rebuild must not carry it over
            conn.execute("UPDATE challenges SET title = 'corrupted' WHERE id = 31")

        rebuild(settings, timeout_s=240)

        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            assert conn.execute("SELECT 'challenges'::regclass::oid").fetchone()[0] != old_challenges  # swapped
            assert webapp_state(conn) == before
            # the views read the rebuilt tables, the key guards them, the index and grants are on them
            assert conn.execute("SELECT title FROM challenges WHERE id = 31").fetchone() == ("Challenge 31",)
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.execute("INSERT INTO reminders (email, challenge_id, type) VALUES ('c@x', 999, 'x')")
            assert conn.execute("SELECT to_regclass('webapp_challenges_title_idx')::text").fetchone() == (
                "webapp_challenges_title_idx",)
            assert conn.execute(
                "SELECT indrelid = 'challenges'::regclass FROM pg_index WHERE indexrelid = "
                "'webapp_challenges_title_idx'::regclass").fetchone() == (True,)
            for relation in ("challenges", "participants", "active_challenge_counts"):
                assert conn.execute("SELECT has_table_privilege(%s, %s, 'SELECT')",
                                    (reader_role, relation)).fetchone() == (True,), relation
            assert conn.execute("SELECT obj_description('active_challenge_counts'::regclass, 'pg_class')").fetchone() \
                == ("the leaderboard widget",)
            assert conn.execute("SELECT reloptions FROM pg_class WHERE oid = 'active_challenge_counts'::regclass"
                                ).fetchone() == (["security_barrier=true"],)
            assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lc\\_re%'").fetchone() == (0,)
        live = snapshot(settings)
        live_evidence = evidence_rows(settings.pg_dsn)
    finally:
        worker.stop()

    # the owned tables equal an independent projection of the same topics
    migrate(settings.pg_dsn, "reference", scratch_schema=True)
    reference = Projector(settings, all_projections(), schema="reference", group_id="reference")
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        total = sum(o for (o,) in conn.execute("SELECT next_offset FROM projection_offsets").fetchall())
    reference.run(until=lambda: sum(max(o, 0) for o in reference.loop.positions().values()) >= total)
    assert snapshot(settings, "reference") == live
    assert evidence_rows(settings.pg_dsn, "reference") == live_evidence


@pytest.mark.parametrize("blocker", ["trigger", "matview", "column", "broken_key"])
def test_rebuild_refuses_before_changing_anything(settings: Settings, blocker: str) -> None:
    worker = with_webapp_objects(settings)
    try:
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            if blocker == "trigger":
                conn.execute("CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
                             "'BEGIN RETURN NEW; END'")
                conn.execute("CREATE TRIGGER webapp_touch BEFORE UPDATE ON challenges "
                             "FOR EACH ROW EXECUTE FUNCTION touch()")
                expected = "trigger webapp_touch on table public.challenges"
            elif blocker == "matview":
                conn.execute("CREATE MATERIALIZED VIEW challenge_titles AS SELECT id, title FROM challenges")
                expected = "rule _RETURN on materialized view public.challenge_titles"
            elif blocker == "column":
                conn.execute("ALTER TABLE challenges ADD COLUMN category text")
                expected = "column category of table public.challenges"
            else:  # a reminder for a challenge only the live table has: the rebuilt rows break the key
                conn.execute("INSERT INTO challenges (id, title) VALUES (999, 'written by hand')")
                conn.execute("INSERT INTO reminders (email, challenge_id, type) VALUES ('z@x', 999, 'x')")
                expected = "foreign key reminders_challenge_id_fkey on public.reminders does not hold"
            before = webapp_state(conn)
            oids = conn.execute("SELECT relname, oid FROM pg_class WHERE relname IN ('challenges', 'evidence')"
                                " ORDER BY 1").fetchall()
            titles = conn.execute("SELECT id, title FROM challenges ORDER BY id").fetchall()

        with pytest.raises(RebuildRefused) as refused:
            rebuild(settings, timeout_s=240)
        assert expected in str(refused.value)

        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            assert webapp_state(conn) == before
            assert conn.execute("SELECT relname, oid FROM pg_class WHERE relname IN ('challenges', 'evidence')"
                                " ORDER BY 1").fetchall() == oids
            assert conn.execute("SELECT id, title FROM challenges ORDER BY id").fetchall() == titles
            assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lc\\_re%'").fetchone() == (0,)
    finally:
        worker.stop()
