"""`lc migrate`: plain SQL files from migrations/, applied in name order, each exactly once.

Applied files are tracked in `schema_migrations` with a checksum: re-running is a no-op and a file
changed after it was applied is refused. A session advisory lock makes concurrent runners safe.
Files must not name a schema, so the same files build a fresh schema for `lc rebuild`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from migrations import MIGRATIONS_DIR

ADVISORY_LOCK_KEY = 0x1C_0001  # any constant shared by every runner


class MigrationChanged(RuntimeError):
    """An applied migration file differs from what was applied; fix forward with a new file."""


@dataclass(frozen=True)
class Migration:
    filename: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    return [Migration(p.name, p.read_text()) for p in sorted(folder.glob("*.sql"))]


def migrate(dsn: str, schema: str = "public", folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations into `schema`; returns the file names applied now."""
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       id bigserial PRIMARY KEY,
                       filename text NOT NULL UNIQUE,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            applied = dict(conn.execute("SELECT filename, checksum FROM schema_migrations").fetchall())
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
                        "INSERT INTO schema_migrations (filename, checksum) VALUES (%s, %s)",
                        (migration.filename, migration.checksum),
                    )
                applied_now.append(migration.filename)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied_now
