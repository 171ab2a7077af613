"""PostgreSQL crashes under a running projector (SIGKILL of the postmaster) and comes back with `lc up`'s
start: the projector retries with bounded, logged backoff, resumes, and a rebalance right after (which
reads the stored offsets on the consumer thread's connection) works too; every row exactly once."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator

import psycopg
import pytest
from kits.background import Background, wait_for
from kits.evidence import publish
from kits.postgres import private_postgres
from prometheus_client import REGISTRY

from cli.settings import Settings
from devstack.postgres import PostgresServer, postmaster_pid
from eventlog.producer import EventProducer
from projections.framework import Projector
from projections.migrate import migrate
from projections.registry import all_projections

SUBJECT = "0x" + "ab" * 20


@pytest.fixture
def crashable(settings: Settings) -> Iterator[tuple[Settings, PostgresServer]]:
    """The test's topics, with the projections in a PostgreSQL server of the test's own."""
    with private_postgres() as server:
        private = settings.replace(pg_dsn=server.admin_dsn("lightchallenge"))
        migrate(private.pg_dsn)
        yield private, server


def evidence_rows(settings: Settings) -> list[int]:
    try:
        with psycopg.connect(settings.pg_dsn, connect_timeout=2) as conn:
            return [row[0] for row in conn.execute("SELECT challenge_id FROM evidence ORDER BY 1")]
    except psycopg.OperationalError:
        return []


def publish_many(settings: Settings, ids: range) -> None:
    with EventProducer(settings, "test") as producer:
        for n in ids:
            publish(producer, n, SUBJECT, "fitbit", [{"steps": n}], occurred_at=1_000 + n)


@pytest.mark.slow
def test_the_projector_rides_out_a_postgres_crash(crashable: tuple[Settings, PostgresServer],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    settings, server = crashable
    reconnects = REGISTRY.get_sample_value("lc_database_reconnects_total", {"stage": "lc-projector"}) or 0
    first = Projector(settings, all_projections())
    running = Background(first.run, first.stop.set)
    second: Background | None = None
    try:
        publish_many(settings, range(1, 11))
        wait_for(lambda: len(evidence_rows(settings)) == 10, what="ten rows before the crash")

        with caplog.at_level(logging.WARNING):
            os.kill(postmaster_pid(server.cluster_dir()) or 0, signal.SIGKILL)
            publish_many(settings, range(11, 21))  # while the database is down
            time.sleep(3)  # the writer fails and backs off
            server.start()  # as `lc up` does right after a crash
            wait_for(lambda: len(evidence_rows(settings)) == 20, timeout=120, what="every row after the restart")
        assert running.thread.is_alive(), "the projector must ride out the crash"
        assert any("connection lost" in r.getMessage() for r in caplog.records)
        assert (REGISTRY.get_sample_value("lc_database_reconnects_total", {"stage": "lc-projector"}) or 0) > reconnects

        other = Projector(settings, all_projections())  # a rebalance: assignment reads offsets again
        second = Background(other.run, other.stop.set)
        publish_many(settings, range(21, 41))
        wait_for(lambda: len(evidence_rows(settings)) == 40, timeout=120, what="every row after the rebalance")
        assert running.thread.is_alive() and second.thread.is_alive()
    finally:
        if second is not None:
            second.stop()
        running.stop()
    assert evidence_rows(settings) == list(range(1, 41))  # each exactly once
