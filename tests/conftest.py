"""Shared fixtures: the real services the integration tests run against.

Services come from the environment (`./lc test` starts the local stack and exports LC_* variables);
anvil is started per test where a test needs a chain of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.anvil import free_port, start_anvil
from eventlog.config import Settings

SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings of the running stack, with a topic prefix unique to this test session."""
    return Settings.from_env(topic_prefix=f"t{uuid.uuid4().hex[:8]}.")


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[str]:
    """A fresh anvil node for one test; yields its RPC URL."""
    port = free_port()
    process = start_anvil(port, tmp_path / "anvil.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """../shared/fixtures, read in place; tests that need it skip when it is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real provider payloads not available: {SHARED_FIXTURES} is absent")
    return SHARED_FIXTURES
