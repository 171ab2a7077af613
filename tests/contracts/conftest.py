"""Fixtures of the contract tests: a fresh anvil (tests/conftest.py) with every contract deployed."""

from __future__ import annotations

import pytest

from contracts.scenario import Scenario
from contracts.system import LightChallenge


@pytest.fixture
def system(anvil: str) -> LightChallenge:
    return LightChallenge.deploy(anvil)


@pytest.fixture
def drive(system: LightChallenge) -> Scenario:
    return Scenario(system)
