"""The dev deployment passes each constructor what the real one takes and wires the roles as spec §2.7
says, through the real setters (setTreasury, setFeeConfig with one struct, grantRole), on anvil."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from eth_utils import keccak
from kits.contracts import reverts

from chain.deployments import read_deployments
from devchain.deploy import DeployOptions, deployment_mismatches
from devchain.system import LightChallenge
from domain.contracts import AIVM, TREASURY
from eventlog.config import PROJECT_ROOT

DEFAULT_ADMIN_ROLE = b"\x00" * 32
OPERATOR_ROLE = keccak(text="OPERATOR_ROLE")
SWEEPER_ROLE = keccak(text="SWEEPER_ROLE")
ZERO_ADDRESS = "0x" + "00" * 20


def test_constructor_arguments_land_where_the_real_contracts_keep_them(system: LightChallenge):
    call, roles = system.client.call, system.roles
    assert call(system.pay, "treasury") == system.treasury.address
    assert call(system.pay, "protocol") == roles.protocol.address
    assert call(system.aivm, "validatorRegistry") == system.validator_registry.address
    assert call(system.task_registry, "owner") == roles.admin.address
    assert call(system.verifier, "owner") == roles.admin.address
    assert call(system.verifier, "aivm") == system.aivm.address
    assert call(system.verifier, "taskRegistry") == system.task_registry.address
    assert call(system.metadata, "owner") == roles.admin.address


def test_treasury_roles_after_deployment(system: LightChallenge):
    treasury, roles = system.treasury, system.roles
    has = lambda role, who: system.client.call(treasury, "hasRole", role, who)  # noqa: E731
    assert has(DEFAULT_ADMIN_ROLE, roles.admin.address) and has(SWEEPER_ROLE, roles.admin.address)
    assert has(OPERATOR_ROLE, system.pay.address)  # granted after ChallengePay exists (it needs the Treasury)
    assert not has(OPERATOR_ROLE, roles.admin.address) and not has(OPERATOR_ROLE, roles.worker.address)


def test_treasury_initial_operator_is_granted_by_the_constructor(system: LightChallenge):
    admin, operator = system.roles.admin, system.roles.worker
    address = system.client.deploy(TREASURY, admin.address, operator.address, sender=admin)
    treasury = system.client.contract(TREASURY, address)
    assert system.client.call(treasury, "hasRole", OPERATOR_ROLE, operator.address)
    with reverts("ZeroAddress"):
        system.client.deploy(TREASURY, ZERO_ADDRESS, operator.address, sender=admin)


def test_aivm_fee_treasury_is_the_deployer_until_the_owner_sets_it(system: LightChallenge):
    client, roles = system.client, system.roles
    assert client.call(system.aivm, "treasury") == roles.protocol.address  # set by the deployment
    deployer = roles.players[0]
    fresh = client.contract(AIVM, client.deploy(AIVM, system.validator_registry.address, sender=deployer))
    assert client.call(fresh, "treasury") == deployer.address
    with reverts("OwnableUnauthorizedAccount"):
        client.send(fresh, "setTreasury", roles.protocol.address, sender=roles.players[1])
    with reverts("InvalidParams"):
        client.send(fresh, "setTreasury", ZERO_ADDRESS, sender=deployer)
    client.send(fresh, "setTreasury", roles.protocol.address, sender=deployer)
    assert client.call(fresh, "treasury") == roles.protocol.address


def test_fee_config_is_set_as_one_struct(system: LightChallenge):
    options = DeployOptions()
    expected = (options.forfeit_fee_bps, options.protocol_bps, options.creator_bps, options.cashback_bps)
    assert tuple(system.client.call(system.pay, "feeConfig")) == expected


def _deploy_if_missing(rpc_url: str, deployments: Path) -> str:
    env = {**os.environ, "LC_RPC_URL": rpc_url, "LC_DEPLOYMENTS_FILE": str(deployments),
           "LC_HOME": str(deployments.parent)}
    result = subprocess.run([sys.executable, "-m", "cli.main", "contracts", "deploy", "--if-missing"],
                            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_deploy_if_missing_deploys_only_when_the_chain_lacks_the_recorded_contracts(anvil: str, tmp_path: Path):
    """compose's setup: the deployments file persists in a volume; after a chain restart without its state
    the recorded addresses have no code, and setup deploys again instead of leaving the stages on nothing."""
    deployments = tmp_path / "deployments.json"
    assert deployment_mismatches(anvil, deployments) == [f"{deployments} does not exist"]
    assert "deploying" in _deploy_if_missing(anvil, deployments)
    recorded = read_deployments(deployments)
    assert deployment_mismatches(anvil, deployments) == []

    assert "nothing to deploy" in _deploy_if_missing(anvil, deployments)
    assert read_deployments(deployments) == recorded
    assert deployment_mismatches(anvil, deployments) == []

    httpx.post(anvil, json={"jsonrpc": "2.0", "id": 1, "method": "anvil_reset", "params": []}).raise_for_status()
    lost = deployment_mismatches(anvil, deployments)
    assert len(lost) == len(recorded) and all(m.startswith("no code at") for m in lost)
    assert "no code at" in _deploy_if_missing(anvil, deployments)
    assert deployment_mismatches(anvil, deployments) == []


def test_a_deployments_file_of_another_chain_does_not_match(anvil: str, tmp_path: Path):
    deployments = tmp_path / "deployments.json"
    deployments.write_text(json.dumps({"chainId": 1, "contracts": {}}))
    assert deployment_mismatches(anvil, deployments) == [f"{deployments} is for chain 1, the node is chain 31337"]
    deployments.write_text("{not json")
    assert deployment_mismatches(anvil, deployments) == [f"{deployments} is not a deployments file (JSONDecodeError)"]
