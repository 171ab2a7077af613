"""`lc migrate`: plain SQL files from migrations/, applied in name order, each exactly once.

The files create only what `projections.ownership` declares. Applied files are tracked in the
pipeline's own bookkeeping table `lc_pipeline_migrations` with a checksum, so the web app's migration
runner keeps its `schema_migrations` in the same schema: re-running is a no-op and a file changed
after it was applied is refused. A database migrated before the rename has its bookkeeping moved
forward (table, constraints and sequence renamed, so the web app's runner can create its own).
A session advisory lock makes concurrent runners safe. Files must not name a schema, so the same
files build a rebuild's scratch schema.

On the live schema (not a scratch one) `migrate` also:
- refuses a first migration when a table the pipeline owns already exists (the web app's copy of
  `evidence`, `challenges`, ...): it would not be the table the projector expects, and it is not
  ours to drop; docs/webapp.md says how to move such tables aside for the cut-over;
- creates the shared tables that are absent (`migrations/shared/`, `CREATE ... IF NOT EXISTS` with
  the web app's own definition; a database the web app already migrated keeps its own);
- drops the scratch schemas interrupted rebuilds left behind (`projections.scratch`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from migrations import MIGRATIONS_DIR
from projections import scratch
from projections.ownership import BOOKKEEPING_TABLE, LEGACY_BOOKKEEPING_TABLE, PROJECTED, SHARED

SHARED_DIR = MIGRATIONS_DIR / "shared"
ADVISORY_LOCK_KEY = 0x1C_0001  # any constant shared by every runner


class MigrationChanged(RuntimeError):
    """An applied migration file differs from what was applied; fix forward with a new file."""


class ForeignTablesInTheWay(RuntimeError):
    """Tables the pipeline owns exist but were not created by `lc migrate`."""


@dataclass(frozen=True)
class Migration:
    filename: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    return [Migration(p.name, p.read_text()) for p in sorted(folder.glob("*.sql"))]


def migrate(dsn: str, schema: str = "public", folder: Path = MIGRATIONS_DIR, *, scratch_schema: bool = False
            ) -> list[str]:
    """Apply pending migrations into `schema`; returns the file names applied now."""
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            move_bookkeeping_forward(conn, schema)
            conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {BOOKKEEPING_TABLE} (
                       id bigserial PRIMARY KEY,
                       filename text NOT NULL UNIQUE,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            applied = dict(conn.execute(f"SELECT filename, checksum FROM {BOOKKEEPING_TABLE}").fetchall())
            if not applied and not scratch_schema:
                _refuse_foreign_owned_tables(conn, schema)
            for migration in load_migrations(folder):
                known = applied.get(migration.filename)
                if known is not None:
                    if known != migration.checksum:
                        raise MigrationChanged(
                            f"{migration.filename} was changed after it was applied to schema {schema} "
                            f"(applied checksum {known[:12]}, file now {migration.checksum[:12]}); "
                            "add a new migration instead of editing an applied one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        f"INSERT INTO {BOOKKEEPING_TABLE} (filename, checksum) VALUES (%s, %s)",
                        (migration.filename, migration.checksum),
                    )
                applied_now.append(migration.filename)
            if not scratch_schema:
                create_absent_shared_tables(conn)
                scratch.drop_leftovers(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied_now


def applied_migrations(conn: psycopg.Connection, schema: str) -> list[str]:
    return [row[0] for row in conn.execute(
        sql.SQL("SELECT filename FROM {}.{} ORDER BY filename").format(
            sql.Identifier(schema), sql.Identifier(BOOKKEEPING_TABLE))).fetchall()]


def move_bookkeeping_forward(conn: psycopg.Connection, schema: str) -> bool:
    """Move the pipeline's pre-issue-12 `schema_migrations` (recognised by its checksum column) to
    `lc_pipeline_migrations`: renamed with its constraints and sequence, so the names the web app's
    runner creates are free; or, when both exist (an older `lc migrate` ran after a newer one), its
    rows merged into the new table and the old one dropped. The web app's own `schema_migrations` (no
    checksum) is left alone."""
    ours = conn.execute(
        """SELECT 1 FROM information_schema.columns
           WHERE table_schema = %s AND table_name = %s AND column_name = 'checksum'""",
        (schema, LEGACY_BOOKKEEPING_TABLE)).fetchone()
    if ours is None:
        return False
    exists = conn.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))",
                          (schema, BOOKKEEPING_TABLE)).fetchone()
    old, new = sql.Identifier(LEGACY_BOOKKEEPING_TABLE), sql.Identifier(BOOKKEEPING_TABLE)
    with conn.transaction():
        if exists[0] is not None:
            conn.execute(sql.SQL(
                """INSERT INTO {} (filename, checksum, applied_at) SELECT filename, checksum, applied_at FROM {}
                   ON CONFLICT (filename) DO NOTHING""").format(new, old))
            conn.execute(sql.SQL("DROP TABLE {}").format(old))
            return True
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(old, new))
        for suffix in ("pkey", "filename_key"):
            conn.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                new, sql.Identifier(f"{LEGACY_BOOKKEEPING_TABLE}_{suffix}"),
                sql.Identifier(f"{BOOKKEEPING_TABLE}_{suffix}")))
        conn.execute(sql.SQL("ALTER SEQUENCE {} RENAME TO {}").format(
            sql.Identifier(f"{LEGACY_BOOKKEEPING_TABLE}_id_seq"), sql.Identifier(f"{BOOKKEEPING_TABLE}_id_seq")))
    return True


def _refuse_foreign_owned_tables(conn: psycopg.Connection, schema: str) -> None:
    present = [row[0] for row in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = ANY(%s) ORDER BY 1", (schema, list(PROJECTED))).fetchall()]
    if present:
        raise ForeignTablesInTheWay(
            f"schema {schema} already has {', '.join(present)}, which lc migrate did not create (no "
            f"{BOOKKEEPING_TABLE} entries): the pipeline owns these tables and would project into them. "
            "Move them aside first (ALTER TABLE ... SET SCHEMA webapp_legacy; see docs/webapp.md, cut-over)")


def create_absent_shared_tables(conn: psycopg.Connection, folder: Path = SHARED_DIR) -> None:
    """The shared tables, each only if absent (the files use IF NOT EXISTS throughout)."""
    for table in SHARED:
        conn.execute((folder / f"{table}.sql").read_text())
