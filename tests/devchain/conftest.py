"""Fixtures of the contract tests: a fresh anvil (tests/conftest.py) with every contract deployed."""

from __future__ import annotations

import pytest

from devchain.scenario import Scenario
from devchain.system import LightChallenge


@pytest.fixture
def system(anvil: str) -> LightChallenge:
    return LightChallenge.deploy(anvil)


@pytest.fixture
def drive(system: LightChallenge) -> Scenario:
    return Scenario(system)
