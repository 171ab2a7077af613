"""The pipeline owns a declared set of tables and shares the schema with the web app's own.

`lc migrate` creates exactly what projections/ownership.py declares, keeps its bookkeeping apart
from the web app's `schema_migrations`, moves an older database's bookkeeping forward, refuses to
take over tables it did not create, and drops what interrupted rebuilds left behind.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from cli.settings import Settings
from projections import scratch
from projections.migrate import ForeignTablesInTheWay, load_migrations, migrate
from projections.ownership import BOOKKEEPING_TABLE, KEPT, PROJECTED, SHARED, owned_indexes, owned_tables

# The web app's runner (spec/schema.md §1): its own bookkeeping, one transaction per file.
WEBAPP_BOOKKEEPING = """CREATE TABLE IF NOT EXISTS schema_migrations (
    id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, applied_at timestamptz NOT NULL DEFAULT now())"""
WEBAPP_MIGRATIONS = {
    "011_reminders.sql": """CREATE TABLE IF NOT EXISTS reminders (
        id bigserial PRIMARY KEY, email text NOT NULL, challenge_id bigint NOT NULL REFERENCES challenges(id),
        type text NOT NULL, sent boolean NOT NULL DEFAULT false, created_at timestamptz NOT NULL DEFAULT now())""",
    "016_achievements_reputation.sql": """
        CREATE TABLE IF NOT EXISTS achievement_mints (id bigserial PRIMARY KEY, token_id bigint,
            challenge_id bigint NOT NULL, recipient text NOT NULL, achievement_type text NOT NULL);
        CREATE TABLE IF NOT EXISTS reputation (subject text PRIMARY KEY, points integer NOT NULL DEFAULT 0);""",
    "021_disputes_notifications.sql": """CREATE TABLE IF NOT EXISTS notifications (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(), wallet text NOT NULL, type text NOT NULL, title text NOT NULL,
        body text, data jsonb NOT NULL DEFAULT '{}', read boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now())""",
}


def run_webapp_runner(dsn: str, schema: str, migrations: dict[str, str] = WEBAPP_MIGRATIONS) -> list[str]:
    """What db/migrate.ts does: skip the names it has, apply the others with their bookkeeping row."""
    applied_now = []
    with psycopg.connect(dsn, options=f"-c search_path={schema}") as conn:
        conn.execute(WEBAPP_BOOKKEEPING)
        conn.commit()
        done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations").fetchall()}
        for name, text in sorted(migrations.items()):
            if name in done:
                continue
            with conn.transaction():
                conn.execute(text)
                conn.execute("INSERT INTO schema_migrations (name) VALUES (%s) ON CONFLICT DO NOTHING", (name,))
            applied_now.append(name)
    return applied_now


def relations(dsn: str, schema: str) -> dict[str, set[str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """SELECT c.relkind, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'i', 'v')""", (schema,)).fetchall()
    found: dict[str, set[str]] = {"tables": set(), "indexes": set(), "views": set()}
    for kind, name in rows:
        found["indexes" if kind == "i" else "views" if kind == "v" else "tables"].add(name)
    return found


def test_the_migrations_create_exactly_the_declared_tables_and_indexes(settings: Settings) -> None:
    migrate(settings.pg_dsn, "declared", scratch_schema=True)
    found = relations(settings.pg_dsn, "declared")
    assert found["tables"] == set(owned_tables())
    assert found["indexes"] == set(owned_indexes())
    assert not found["views"]
    # the live schema also has the shared table, created because it was absent
    assert relations(settings.pg_dsn, "public")["tables"] == set(owned_tables()) | set(SHARED)
    assert not set(PROJECTED) & set(KEPT) and not set(SHARED) & set(owned_tables())


def test_the_web_app_runner_works_beside_lc_migrate_in_either_order(settings: Settings) -> None:
    # lc migrate first (the fixture migrated public), then the web app's runner, then both again
    assert run_webapp_runner(settings.pg_dsn, "public") == sorted(WEBAPP_MIGRATIONS)
    assert migrate(settings.pg_dsn) == []
    assert run_webapp_runner(settings.pg_dsn, "public") == []
    with psycopg.connect(settings.pg_dsn) as conn:
        webapp = conn.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
        ours = conn.execute(f"SELECT filename FROM {BOOKKEEPING_TABLE} ORDER BY filename").fetchall()
    assert [r[0] for r in webapp] == sorted(WEBAPP_MIGRATIONS)
    assert [r[0] for r in ours] == [m.filename for m in load_migrations()]

    # the web app's runner first, on an empty schema, then lc migrate: nothing of the web app's is touched
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA webapp_first")
        conn.execute("CREATE TABLE webapp_first.challenges_seen (id bigint)")  # a table of its own, no FK yet
    first = {name: text for name, text in WEBAPP_MIGRATIONS.items() if name != "011_reminders.sql"}
    assert run_webapp_runner(settings.pg_dsn, "webapp_first", first) == sorted(first)  # reminders need challenges
    assert migrate(settings.pg_dsn, "webapp_first") == [m.filename for m in load_migrations()]
    assert run_webapp_runner(settings.pg_dsn, "webapp_first") == ["011_reminders.sql"]
    with psycopg.connect(settings.pg_dsn) as conn:
        columns = conn.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = 'webapp_first' AND table_name = 'schema_migrations' ORDER BY 1""").fetchall()
    assert [c[0] for c in columns] == ["applied_at", "id", "name"]


def test_an_older_database_has_its_bookkeeping_moved_forward(settings: Settings) -> None:
    """Before issue 12 the pipeline tracked its files in `schema_migrations` (with a checksum)."""
    with psycopg.connect(settings.pg_dsn, autocommit=True, options="-c search_path=legacy") as conn:
        conn.execute("CREATE SCHEMA legacy")
        conn.execute("""CREATE TABLE schema_migrations (id bigserial PRIMARY KEY, filename text NOT NULL UNIQUE,
                        checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())""")
        for migration in load_migrations():
            conn.execute(migration.sql)
            conn.execute("INSERT INTO schema_migrations (filename, checksum) VALUES (%s, %s)",
                         (migration.filename, migration.checksum))
    assert migrate(settings.pg_dsn, "legacy") == []  # recognised as applied: nothing runs twice
    found = relations(settings.pg_dsn, "legacy")
    assert "schema_migrations" not in found["tables"]
    assert {"lc_pipeline_migrations_pkey", "lc_pipeline_migrations_filename_key"} <= found["indexes"]
    # the names the web app's runner needs are free: table, constraint indexes and sequence
    assert run_webapp_runner(settings.pg_dsn, "legacy") == sorted(WEBAPP_MIGRATIONS)
    with psycopg.connect(settings.pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM legacy.lc_pipeline_migrations").fetchone()[0] == len(
            load_migrations())
        assert conn.execute("SELECT to_regclass('legacy.schema_migrations_id_seq')").fetchone()[0] is not None


def test_a_first_migrate_refuses_owned_tables_it_did_not_create(settings: Settings) -> None:
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA cutover")
        conn.execute("CREATE TABLE cutover.evidence (id bigserial PRIMARY KEY, data jsonb)")
        conn.execute("CREATE TABLE cutover.challenges (id bigint PRIMARY KEY)")
        conn.execute("INSERT INTO cutover.challenges VALUES (1)")
    with pytest.raises(ForeignTablesInTheWay, match="challenges, evidence"):
        migrate(settings.pg_dsn, "cutover")
    found = relations(settings.pg_dsn, "cutover")
    assert found["tables"] == {"evidence", "challenges", BOOKKEEPING_TABLE}
    with psycopg.connect(settings.pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM cutover.challenges").fetchone()[0] == 1


def test_leftover_scratch_schemas_are_dropped_unless_a_rebuild_holds_them(settings: Settings) -> None:
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        for name in ("lc_rebuild_1", "lc_rebuild_2", "lc_retired_1"):
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE TABLE {}.evidence (id int)").format(sql.Identifier(name)))
    holder = psycopg.connect(settings.pg_dsn, autocommit=True)
    try:
        scratch.hold(holder, "lc_rebuild_2")  # a rebuild still running in it
        migrate(settings.pg_dsn)
        with psycopg.connect(settings.pg_dsn) as conn:
            left = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'lc\\_re%' ORDER BY 1").fetchall()
        assert [r[0] for r in left] == ["lc_rebuild_2"]
    finally:
        holder.close()  # the rebuild's session ends, as with SIGKILL
    migrate(settings.pg_dsn)
    with psycopg.connect(settings.pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lc\\_re%'").fetchone()[0] == 0


def test_a_rebuild_whose_session_was_cut_holds_its_scratch_schema_again(settings: Settings) -> None:
    """After a database restart ends the holding session, the rebuild (still running) takes the lock again."""
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA lc_rebuild_3")
    holder = scratch.ScratchHold(settings.pg_dsn, "lc_rebuild_3")
    try:
        with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            cut = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory'"
                               " AND objid = hashtext('lc_rebuild_3')::oid AND pid <> pg_backend_pid()").fetchone()
            assert cut == (1,)
        holder._probed = 0.0  # the next poll probes the session
        holder.ensure()
        migrate(settings.pg_dsn)
        with psycopg.connect(settings.pg_dsn) as conn:
            assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'lc_rebuild_3'").fetchone() == (1,)
    finally:
        holder.close()


def test_bookkeeping_written_by_an_older_lc_migrate_after_a_newer_one_is_merged(settings: Settings) -> None:
    """An older `lc migrate` (same database, mixed versions) recreated `schema_migrations` and recorded a
    file there; the newer one takes its rows over and drops it, so nothing is applied twice."""
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE extra_from_old_runner (id int)")
        conn.execute("""CREATE TABLE schema_migrations (id bigserial PRIMARY KEY, filename text NOT NULL UNIQUE,
                        checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())""")
        conn.execute(f"INSERT INTO schema_migrations (filename, checksum) SELECT filename, checksum FROM "
                     f"{BOOKKEEPING_TABLE}")
        conn.execute("INSERT INTO schema_migrations (filename, checksum) VALUES ('900_old_runner.sql', 'x')")
    assert migrate(settings.pg_dsn) == []
    with psycopg.connect(settings.pg_dsn) as conn:
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)
        names = [r[0] for r in conn.execute(f"SELECT filename FROM {BOOKKEEPING_TABLE} ORDER BY filename")]
    assert names == sorted([m.filename for m in load_migrations()] + ["900_old_runner.sql"])
