"""A test's own topics and database on the shared services (no tests here)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from cli.settings import Settings
from eventlog.admin import create_topics, delete_prefixed_topics
from projections.migrate import migrate


@contextmanager
def isolated_settings(stack: Settings, **overrides: Any) -> Iterator[Settings]:
    """Stack settings (with `overrides`) under a topic prefix and a fresh, migrated database of their own;
    both are dropped afterwards."""
    tag = uuid.uuid4().hex[:10]
    database = f"lc_test_{tag}"
    base = psycopg.conninfo.conninfo_to_dict(stack.pg_dsn)
    admin_dsn = psycopg.conninfo.make_conninfo(**{**base, "dbname": "postgres"})
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    settings = stack.replace(topic_prefix=f"t{tag}.", pg_dsn=psycopg.conninfo.make_conninfo(**{**base, "dbname": database}),
                             **overrides)
    try:
        migrate(settings.pg_dsn)
        create_topics(settings)
        yield settings
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        # a broker holds open files per partition: a long suite would exhaust the file limit otherwise
        delete_prefixed_topics(settings)
