"""The deployments file: contract name -> address of one LightChallenge deployment."""

from __future__ import annotations

import json
from pathlib import Path


class DeploymentsMissing(FileNotFoundError):
    """No deployments file where the settings point; the message says which and what to do."""


def read_deployments(path: Path | str) -> dict[str, str]:
    """Contract name -> address from a deployments file (the nested `contracts` or a flat layout; an
    entry may be an address or an object with an `address`)."""
    if not Path(path).is_file():
        raise DeploymentsMissing(f"no deployments file at {path} (LC_DEPLOYMENTS_FILE): deploy the contracts "
                                 "(lc contracts deploy on a dev chain) or point it at the deployment's file")
    data = json.loads(Path(path).read_text())
    contracts = data.get("contracts", data) if isinstance(data, dict) else {}
    result = {}
    for name, entry in contracts.items():
        if isinstance(entry, dict):
            entry = entry.get("address")
        if isinstance(entry, str) and entry.startswith("0x"):
            result[name] = entry
    return result
