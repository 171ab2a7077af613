"""Shared fixtures: the real services the integration tests run against.

Where the services come from, in order:
1. the environment: `./lc test` starts the local stack and exports LC_KAFKA_BOOTSTRAP and LC_PG_DSN;
2. testcontainers (Kafka and PostgreSQL containers) when a Docker engine answers;
3. otherwise the local stack itself (`lc up`), started from the fixture.
Each test gets its own topic prefix and its own freshly migrated database; anvil is started per
test where a test needs a chain of its own.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from kits.isolated import isolated_settings
from kits.uploads import BILLION_LAUGHS

from cli.settings import Settings
from devstack.anvil import free_port, start_anvil
from devstack.process import kill_group

SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    """Settings pointing at a running Kafka broker and PostgreSQL server."""
    if os.environ.get("LC_KAFKA_BOOTSTRAP") and os.environ.get("LC_PG_DSN"):
        yield Settings.from_env()
        return
    if _docker_available():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka, PostgresContainer("postgres:15") as pg:
            dsn = pg.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
            yield Settings.from_env(kafka_bootstrap=kafka.get_bootstrap_server(), pg_dsn=dsn)
        return
    from devstack.stack import up

    settings = Settings.from_env()
    up(settings)
    yield settings


@pytest.fixture
def settings(stack: Settings, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Stack settings with a topic prefix and a fresh, migrated database of this test's own."""
    with isolated_settings(stack) as settings:
        yield settings


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[str]:
    """A fresh anvil node for one test; yields its RPC URL."""
    port = free_port()
    process = start_anvil(port, tmp_path / "anvil.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        kill_group(process.pid, signal.SIGKILL)  # the npm wrapper and the node it started
        process.wait()


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """../shared/fixtures, read in place; tests that need it skip when it is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real provider payloads not available: {SHARED_FIXTURES} is absent")
    return SHARED_FIXTURES


@pytest.fixture
def billion_laughs_xml(tmp_path: Path) -> Path:
    path = tmp_path / "export.xml"
    path.write_text(BILLION_LAUGHS)
    return path


FIXTURE_MARKERS = {
    "stack": "services", "settings": "services", "kafka_bootstrap": "services", "anvil": "chain",
    "shared_fixtures": "provider_fixtures",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the real services it uses (pyproject.toml documents the markers)."""
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            marker = FIXTURE_MARKERS.get(fixture)
            if marker is not None:
                item.add_marker(marker)
