"""`lc rebuild` interrupted by SIGTERM, by SIGKILL and by a database crash: the live tables stay as
they were (or, when the rebuild outlives the crash, hold the same rows), and no scratch schema is
left once the next `lc migrate` has run.

The rebuild runs as its own process (`python -m cli.main rebuild`). To interrupt it mid-replay at
a known point, the test locks the scratch schema's `evidence` table as soon as it exists, so the
rebuild's writer waits there with part of the replay written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from kits.background import wait_for
from kits.evidence import evidence_rows, publish
from kits.postgres_cluster import own_cluster
from kits.projections import ChainFeed, registration_document, snapshot, start_projector, wait_projected

from cli.settings import Settings
from eventlog.config import PROJECT_ROOT
from eventlog.producer import EventProducer
from projections.migrate import migrate


def feed(settings: Settings) -> int:
    with EventProducer(settings, "test") as producer:
        chain = ChainFeed(producer)
        for cid in range(40, 45):
            chain.register(registration_document(cid))
            chain.created(cid, "0x" + "cc" * 20, block=cid)
        for n in range(3_000):
            publish(producer, 40 + n % 5, f"0x{n % 7:040x}", "strava", [{"n": n % 11}], occurred_at=1_000 + n)
        producer.flush()
    return chain.published + 3_000


def scratch_schemas(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'lc\\_re%' ORDER BY 1").fetchall()]


def start_rebuild(settings: Settings) -> subprocess.Popen[str]:
    env = {**os.environ, "LC_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "LC_PG_DSN": settings.pg_dsn,
           "LC_TOPIC_PREFIX": settings.topic_prefix}
    return subprocess.Popen([sys.executable, "-m", "cli.main", "rebuild"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stall_in_scratch(dsn: str, rebuild: subprocess.Popen[str]) -> tuple[psycopg.Connection, str]:
    """Wait for the rebuild's scratch schema and lock its evidence table (in an open transaction)."""
    def evidence_table() -> str | None:
        assert rebuild.poll() is None, rebuild.communicate()
        for schema in scratch_schemas(dsn):
            with psycopg.connect(dsn) as conn:
                if conn.execute("SELECT to_regclass(%s)", (f"{schema}.evidence",)).fetchone()[0]:
                    return schema
        return None

    found: list[str] = []
    wait_for(lambda: bool(found.append(evidence_table()) or found[-1]), timeout=120, what="the scratch schema")
    schema = found[-1]
    assert schema is not None
    lock = psycopg.connect(dsn)
    lock.execute(f"LOCK TABLE {schema}.evidence IN ACCESS EXCLUSIVE MODE")
    # the replay reaches the lock: its writer waits for the evidence table with a batch in hand
    wait_for(lambda: _waiting_on_lock(dsn), timeout=120, what="the rebuild to reach the locked table")
    return lock, schema


def _waiting_on_lock(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()").fetchone()[0] > 0


def live_state(settings: Settings) -> tuple[dict[str, list[tuple]], list[tuple]]:
    return snapshot(settings), evidence_rows(settings.pg_dsn)


def project_then_rebuild(settings: Settings) -> tuple[tuple, subprocess.Popen[str], psycopg.Connection, str]:
    """Project the feed live, then start a rebuild and stall it mid-replay: (live state, rebuild, lock, schema)."""
    projector, worker = start_projector(settings)
    try:
        wait_projected(settings, feed(settings))
    finally:
        worker.stop()
    before = live_state(settings)
    rebuild = start_rebuild(settings)
    lock, schema = stall_in_scratch(settings.pg_dsn, rebuild)
    return before, rebuild, lock, schema


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_signalled_rebuild_leaves_the_live_tables_and_no_scratch_schema(settings: Settings, sig: int) -> None:
    before, rebuild, lock, schema = project_then_rebuild(settings)
    try:
        rebuild.send_signal(sig)
        time.sleep(1)
    finally:
        lock.rollback()
        lock.close()
    _out, err = rebuild.communicate(timeout=120)
    if sig == signal.SIGTERM:  # stopped cleanly: says so, exits 1, drops its scratch schema itself
        assert rebuild.returncode == 1, err
        assert "stopped before its tables were swapped in" in err
        assert scratch_schemas(settings.pg_dsn) == []
    else:  # killed: nothing could clean up, the schema stays until the next migrate
        assert rebuild.returncode == -signal.SIGKILL
        assert scratch_schemas(settings.pg_dsn) == [schema]
    assert live_state(settings) == before
    migrate(settings.pg_dsn)
    assert scratch_schemas(settings.pg_dsn) == []
    assert live_state(settings) == before


@pytest.mark.slow
def test_a_rebuild_cut_off_by_a_database_crash_leaves_the_live_tables(settings: Settings) -> None:
    with own_cluster() as cluster:
        own = settings.replace(pg_dsn=cluster.dsn)
        migrate(own.pg_dsn)
        before, rebuild, lock, _schema = project_then_rebuild(own)
        cluster.crash_restart()  # every session is cut, the server recovers from its WAL
        lock.close()
        _out, err = rebuild.communicate(timeout=180)
        # the projector writes a batch again after a lost connection, so the rebuild may carry on and swap
        # (the same rows), or give up; either way the live tables are whole and hold the same rows
        assert "connection lost" in err or rebuild.returncode != 0, err
        assert live_state(own) == before
        migrate(own.pg_dsn)
        assert scratch_schemas(own.pg_dsn) == []
        assert live_state(own) == before
