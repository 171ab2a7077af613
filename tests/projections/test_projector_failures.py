"""A failed database write: logged at once; a data error stops the projector within a poll (the
process exits non-zero), a lost connection is written again after a backoff (real broker and database)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import psycopg
import psycopg.conninfo
import pytest
from kits.background import Background, wait_for
from kits.evidence import publish
from kits.processors import stage_process

from cli.settings import Settings
from devstack.anvil import free_port
from eventlog.producer import EventProducer
from projections.framework import Projector
from projections.registry import all_projections

SUBJECT = "0xabcdef0000000000000000000000000000000001"


def stored_offset(settings: Settings) -> int:
    with psycopg.connect(settings.pg_dsn) as conn:
        return int(conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets").fetchone()[0])


def evidence_count(settings: Settings) -> int:
    with psycopg.connect(settings.pg_dsn) as conn:
        return int(conn.execute("SELECT count(*) FROM evidence").fetchone()[0])


def refuse_poison(settings: Settings) -> None:
    """From now on the table refuses a row with evidence hash 'poison' (a data error, as jsonb refusing
    a NUL would be)."""
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE evidence ADD CONSTRAINT no_poison CHECK (evidence_hash <> 'poison')")


def test_a_data_error_is_logged_at_once_and_stops_the_projector_without_another_message(
    settings: Settings, caplog: pytest.LogCaptureFixture,
) -> None:
    projector = Projector(settings, all_projections())
    running = Background(projector.run, projector.stop.set)
    with EventProducer(settings, "test") as producer:
        publish(producer, 1, SUBJECT, "fitbit", [{"steps": 1}], occurred_at=1_000)
    wait_for(lambda: stored_offset(settings) == 1, what="the first event projected")
    refuse_poison(settings)

    with caplog.at_level(logging.ERROR), EventProducer(settings, "test") as producer:
        publish(producer, 1, SUBJECT, "fitbit", [{"steps": 2}], occurred_at=2_000, evidence_hash="poison")
        producer.flush()
        sent = time.monotonic()
        wait_for(lambda: not running.thread.is_alive(), timeout=15, what="the projector to stop")
    stopped_after = time.monotonic() - sent

    print(f"\nPROJECTOR-STOPPED-AFTER {stopped_after:.2f}s")
    assert stopped_after < 10, stopped_after  # noticed by the next poll, not by the next message
    assert isinstance(running.error, RuntimeError) and "writer failed" in str(running.error)
    assert isinstance(running.error.__cause__, psycopg.errors.CheckViolation)
    [logged] = [r for r in caplog.records if r.levelno == logging.ERROR and "could not be written" in r.getMessage()]
    assert "CheckViolation" in logged.getMessage() and "no_poison" in logged.getMessage()
    assert stored_offset(settings) == 1  # nothing of the failed batch, offsets included


def test_the_projector_process_exits_non_zero_promptly_on_a_data_error(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "projector.log"
    process = stage_process(settings, "projector", log)
    try:
        with EventProducer(settings, "test") as producer:
            publish(producer, 1, SUBJECT, "fitbit", [{"steps": 1}], occurred_at=1_000)
        wait_for(lambda: stored_offset(settings) == 1, what="the first event projected")
        refuse_poison(settings)
        with EventProducer(settings, "test") as producer:
            publish(producer, 1, SUBJECT, "fitbit", [{"steps": 2}], occurred_at=2_000, evidence_hash="poison")
        code = process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code != 0
    text = log.read_text()
    assert "ERROR" in text and "could not be written" in text and "no_poison" in text


def test_a_lost_connection_is_written_again_after_a_backoff(settings: Settings,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    projector = Projector(settings, all_projections())
    running = Background(projector.run, projector.stop.set)
    try:
        with EventProducer(settings, "test") as producer:
            publish(producer, 1, SUBJECT, "fitbit", [{"steps": 1}], occurred_at=1_000)
        wait_for(lambda: stored_offset(settings) == 1, what="the first event projected")
        database = psycopg.conninfo.conninfo_to_dict(settings.pg_dsn)["dbname"]
        with caplog.at_level(logging.WARNING), psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
            killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                  " WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchone()[0]
            assert killed >= 1  # the writer's connection (and the consumer thread's)
            with EventProducer(settings, "test") as producer:
                publish(producer, 2, SUBJECT, "fitbit", [{"steps": 2}], occurred_at=2_000)
            wait_for(lambda: stored_offset(settings) == 2, what="the second event projected after reconnecting")
        assert evidence_count(settings) == 2 and running.thread.is_alive()
        assert any("connection lost" in r.getMessage() for r in caplog.records)
    finally:
        running.stop()


@pytest.mark.parametrize("down_at", ["assignment", "write"])
def test_a_stop_while_waiting_for_the_database_is_a_clean_stop(settings: Settings, down_at: str,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """SIGTERM during a database outage ends the projector without an error, whether it was reading its
    stored offsets for an assignment or writing a batch; nothing is written and the next start resumes."""
    unreachable = psycopg.conninfo.make_conninfo(settings.pg_dsn, port=free_port())
    projector = Projector(settings.replace(pg_dsn=unreachable) if down_at == "assignment" else settings,
                          all_projections())
    if down_at == "write":
        projector._writer_db.dsn = unreachable  # only the writer's connection fails
    with EventProducer(settings, "test") as producer:
        publish(producer, 1, SUBJECT, "fitbit", [{"steps": 1}], occurred_at=1_000)
    running = Background(projector.run, projector.stop.set)
    what = "reading the stored offsets" if down_at == "assignment" else "writing the batch"
    with caplog.at_level(logging.WARNING):
        wait_for(lambda: any(f"{what} again" in r.getMessage() for r in caplog.records), what=f"{what} retried")
    running.stop()  # raises what the projector's run raised
    assert not running.thread.is_alive() and stored_offset(settings) == 0 and evidence_count(settings) == 0
