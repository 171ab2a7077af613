"""A PostgreSQL server of a test's own (never the shared one), for tests that crash or stop it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli.settings import Settings
from devstack.anvil import free_port
from devstack.postgres import PostgresServer, find_bin


@contextmanager
def private_postgres() -> Iterator[PostgresServer]:
    """Started, with the `lightchallenge` database, in a folder the service user can reach; removed after."""
    if find_bin("initdb") is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    home = Path(tempfile.mkdtemp(prefix="lc-pg-private-"))
    home.chmod(0o755)
    settings = Settings.from_env(home=str(home), pg_dsn=f"postgresql://lc@127.0.0.1:{free_port()}/lightchallenge")
    server = PostgresServer(settings)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
