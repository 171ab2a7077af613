"""Scratch schemas of `lc rebuild`, and how a leftover one is told from one in use.

A rebuild holds a session-level advisory lock named after its scratch schema for as long as it runs,
on a connection of its own, taken before the schema is created. The lock goes with the session: a
rebuild stopped by SIGKILL, by a crash of its host or of the database server leaves a schema whose
lock nobody holds. `drop_leftovers` (run by `lc migrate`, so also by `lc up`, and by every rebuild
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
