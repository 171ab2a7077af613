"""Scratch schemas of `lc rebuild`, and how a leftover one is told from one in use.

A rebuild holds a session-level advisory lock named after its scratch schema for as long as it runs,
on a connection of its own, taken before the schema is created (`ScratchHold`; when a database
restart ends that session while the rebuild carries on, the lock is taken again on a new one). The
lock goes with the session: a rebuild stopped by SIGKILL, by a crash of its host, or failing after a
crash of the database server leaves a schema whose lock nobody holds. `drop_leftovers` (run by `lc migrate`, so also by `lc up`, and by every rebuild
before it starts) drops exactly those, and never the schema of a rebuild still running.
"""

from __future__ import annotations

import logging
import time

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

SCRATCH_PREFIX = "lc_rebuild_"
RETIRED_PREFIX = "lc_retired_"
_LOCK_CLASS = 0x1C_0003  # first key of the two-key advisory lock; the second is hashtext(schema)


def new_scratch_name() -> str:
    return f"{SCRATCH_PREFIX}{time.time_ns()}"


def hold(conn: psycopg.Connection, schema: str) -> None:
    """Mark `schema` as in use for the life of `conn`'s session (autocommit connection)."""
    conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_LOCK_CLASS, schema))


class ScratchHold:
    """The lock marking one scratch schema in use, kept for the life of a rebuild."""

    PROBE_SECONDS = 2.0

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema
        self._conn: psycopg.Connection | None = None
        self._probed = 0.0
        self._take()

    def _take(self) -> None:
        self.close()
        self._conn = psycopg.connect(self.dsn, autocommit=True)
        hold(self._conn, self.schema)
        self._probed = time.monotonic()

    def ensure(self) -> None:
        """Take the lock again if its session was lost (checked at most every PROBE_SECONDS); while the
        database is unreachable, try again at the next call."""
        if time.monotonic() - self._probed < self.PROBE_SECONDS:
            return
        self._probed = time.monotonic()
        try:
            if self._conn is not None and not self._conn.broken:
                self._conn.execute("SELECT 1")
                return
        except psycopg.Error:
            pass
        try:
            self._take()
            log.warning("the session holding %s was lost; its lock is held again", self.schema)
        except psycopg.Error as exc:
            log.warning("cannot hold %s again yet: %s", self.schema, exc)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None


def release(conn: psycopg.Connection, schema: str) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_LOCK_CLASS, schema))


def drop_leftovers(conn: psycopg.Connection) -> list[str]:
    """Drop every scratch (or retired) schema no running rebuild holds; returns their names."""
    names = [row[0] for row in conn.execute(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s) OR starts_with(nspname, %s) ORDER BY 1",
        (SCRATCH_PREFIX, RETIRED_PREFIX)).fetchall()]
    dropped = []
    for name in names:
        free = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (_LOCK_CLASS, name)).fetchone()
        if not free or not free[0]:
            continue  # a rebuild is still working in it
        try:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
            dropped.append(name)
            log.warning("dropped %s, left behind by an interrupted rebuild", name)
        finally:
            release(conn, name)
    return dropped
