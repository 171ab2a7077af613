"""The ABIs of the deployed contracts (`chain/abi/<Contract>.json`, plain ABI arrays).

They are the interface of the real LightChallenge contracts; `lc contracts build` extracts them from the
dev chain's compiled contracts, whose public functions and events are kept signature-identical with
the real ones (tests/devchain/test_contracts_signatures.py), and `lc contracts check` verifies them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from domain.contracts import DEPLOYED_CONTRACTS

ABI_DIR = Path(__file__).resolve().parent / "abi"


def abi_path(contract: str) -> Path:
    return ABI_DIR / f"{contract}.json"


@cache
def load_abi(contract: str) -> list[dict[str, Any]]:
    """The ABI of one deployed contract; KeyError for a contract that is not part of a deployment."""
    if contract not in DEPLOYED_CONTRACTS:
        raise KeyError(f"{contract} is not a deployed LightChallenge contract")
    return json.loads(abi_path(contract).read_text())


def abi_text(abi: list[dict[str, Any]]) -> str:
    return json.dumps(abi, indent=2, sort_keys=True) + "\n"
