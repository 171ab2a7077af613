"""`lc up` right after a PostgreSQL crash: the dead postmaster's pid file is waited out, not fatal."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import psycopg
import pytest
from kits.postgres import private_postgres

from devstack.postgres import PostgresServer, postmaster_pid


@pytest.fixture
def private_server() -> Iterator[PostgresServer]:
    with private_postgres() as server:
        yield server


def test_start_right_after_a_crash_waits_for_the_stale_pid_file(private_server: PostgresServer,
                                                                capfd: pytest.CaptureFixture[str]) -> None:
    dsn = private_server.admin_dsn("lightchallenge")
    sessions = [psycopg.connect(dsn) for _ in range(3)]  # backends that outlive their postmaster for a moment
    pid = postmaster_pid(private_server.cluster_dir())
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    for session in sessions:
        session.close()

    assert "PostgreSQL up" in private_server.start()  # at once, no second `lc up` needed
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    said = capfd.readouterr().err
    assert "which is not running (a crashed server); waiting" in said  # the case this is about did happen
    assert "pg_ctl: could not start server" not in said  # pg_ctl's own words stay out of the operator's way
