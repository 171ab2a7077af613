"""Deploy and wire every pipeline contract on a dev chain, and write the deployments JSON.

    python -m devchain.deploy --rpc http://127.0.0.1:8545 --out .lc/deployments.json

Constructors and wiring are the real contracts' (spec §0, §2.7): Treasury(admin, operator) with the
operator granted afterwards (Treasury OPERATOR_ROLE -> ChallengePay, which needs the Treasury's address
first); ChallengePay(treasury, protocol); AIVMInferenceV2(validatorRegistry), whose fee treasury is then
set to the protocol wallet with setTreasury; ChallengeTaskRegistry(owner);
ChallengePayAivmPoiVerifier(owner, aivm, taskRegistry); MetadataRegistry(owner). ChallengePay
dispatchers -> worker and finalizer; ChallengeTaskRegistry dispatcher -> worker; the simulator's
validators are registered (and so active) in the validator registry.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from eth_utils import keccak

from chain.deployments import read_deployments
from devchain.client import DevChainClient
from devchain.roles import Roles, anvil_roles
from domain.contracts import (
    AIVM,
    CHALLENGE_PAY,
    DEPLOYED_CONTRACTS,
    METADATA_REGISTRY,
    TASK_REGISTRY,
    TREASURY,
    VALIDATOR_REGISTRY,
    VERIFIER,
)

TEST_TOKEN = "TestToken"

OPERATOR_ROLE = keccak(text="OPERATOR_ROLE")
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class DeployOptions:
    """ChallengePay fees (bps), AIVM settings; defaults give every payout path a non-zero amount."""

    forfeit_fee_bps: int = 1_000
    protocol_bps: int = 600
    creator_bps: int = 300
    cashback_bps: int = 500
    aivm_protocol_fee_bps: int = 1_000
    poi_quorum: int = 1
    validator_stake_wei: int = 10**18
    # commit / reveal / finalize windows in seconds after the request (the real defaults)
    aivm_timeouts: tuple[int, int, int] = (600, 1_200, 3_600)


def deploy_all(rpc_url: str, roles: Roles | None = None, options: DeployOptions | None = None) -> dict[str, str]:
    """Deploy every contract and wire the roles; returns contract name -> checksummed address."""
    roles = roles or anvil_roles()
    options = options or DeployOptions()
    client = DevChainClient(rpc_url)
    admin = roles.admin

    validator_registry = client.deploy(VALIDATOR_REGISTRY, sender=admin)
    treasury = client.deploy(TREASURY, admin.address, ZERO_ADDRESS, sender=admin)
    pay = client.deploy(CHALLENGE_PAY, treasury, roles.protocol.address, sender=admin)
    aivm = client.deploy(AIVM, validator_registry, sender=admin)
    task_registry = client.deploy(TASK_REGISTRY, admin.address, sender=admin)
    verifier = client.deploy(VERIFIER, admin.address, aivm, task_registry, sender=admin)
    metadata = client.deploy(METADATA_REGISTRY, admin.address, sender=admin)
    token = client.deploy(TEST_TOKEN, "LightChallenge Test USD", "LTUSD", sender=admin)

    client.send(client.contract(TREASURY, treasury), "grantRole", OPERATOR_ROLE, pay, sender=admin)
    pay_contract = client.contract(CHALLENGE_PAY, pay)
    for dispatcher in (roles.worker, roles.finalizer):
        client.send(pay_contract, "setDispatcher", dispatcher.address, True, sender=admin)
    client.send(pay_contract, "setFeeConfig", (options.forfeit_fee_bps, options.protocol_bps, options.creator_bps,
                                               options.cashback_bps), sender=admin)
    client.send(client.contract(TASK_REGISTRY, task_registry), "setDispatcher", roles.worker.address, True,
                sender=admin)
    aivm_contract = client.contract(AIVM, aivm)
    client.send(aivm_contract, "setTreasury", roles.protocol.address, sender=admin)
    client.send(aivm_contract, "setProtocolFee", options.aivm_protocol_fee_bps, sender=admin)
    client.send(aivm_contract, "setPoIQuorum", options.poi_quorum, sender=admin)
    client.send(aivm_contract, "setTimeouts", *options.aivm_timeouts, sender=admin)
    registry_contract = client.contract(VALIDATOR_REGISTRY, validator_registry)
    for validator in roles.validators:
        client.send(registry_contract, "registerValidator", b"\x04" + bytes.fromhex(validator.address[2:]) * 3,
                    sender=validator, value=options.validator_stake_wei)

    return {
        CHALLENGE_PAY: pay,
        TREASURY: treasury,
        TASK_REGISTRY: task_registry,
        VERIFIER: verifier,
        METADATA_REGISTRY: metadata,
        AIVM: aivm,
        VALIDATOR_REGISTRY: validator_registry,
        TEST_TOKEN: token,
    }


def write_deployments(path: Path | str, addresses: dict[str, str], chain_id: int, roles: Roles | None = None) -> Path:
    """Write `{"chainId", "network", "contracts": {name: address}, "roles": {...}}` (addresses only)."""
    path = Path(path)
    document: dict[str, object] = {"chainId": chain_id, "network": f"chain-{chain_id}", "contracts": dict(addresses)}
    if roles is not None:
        document["roles"] = roles.as_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def deployment_mismatches(rpc_url: str, path: Path | str) -> list[str]:
    """Why the deployments file does not describe the chain at `rpc_url`; empty when it does (every
    contract of a dev deployment is recorded and has code at its address, on the recorded chain id). A
    chain restarted without its state, or another chain, shows here: `lc contracts deploy --if-missing`
    deploys again then."""
    path = Path(path)
    if not path.is_file():
        return [f"{path} does not exist"]
    try:
        document = json.loads(path.read_text())
        addresses = read_deployments(path)
    except (ValueError, AttributeError) as exc:
        return [f"{path} is not a deployments file ({type(exc).__name__})"]
    client = DevChainClient(rpc_url)
    recorded_chain = document.get("chainId") if isinstance(document, dict) else None
    if recorded_chain is not None and recorded_chain != client.chain_id:
        return [f"{path} is for chain {recorded_chain}, the node is chain {client.chain_id}"]
    problems = []
    for name in (*DEPLOYED_CONTRACTS, TEST_TOKEN):
        if name not in addresses:
            problems.append(f"no {name} address in {path}")
        elif not client.w3.eth.get_code(addresses[name]):
            problems.append(f"no code at {name} {addresses[name]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deploy the pipeline contracts to a dev chain (anvil).")
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC URL of the node")
    parser.add_argument("--out", required=True, help="deployments JSON to write")
    args = parser.parse_args(argv)
    roles = anvil_roles()
    addresses = deploy_all(args.rpc, roles)
    chain_id = DevChainClient(args.rpc).chain_id
    path = write_deployments(args.out, addresses, chain_id, roles)
    for name, address in addresses.items():
        print(f"{name:30} {address}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
