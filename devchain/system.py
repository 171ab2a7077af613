"""A deployed LightChallenge system: one client plus the contract objects and role accounts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from web3.contract import Contract

from chain.deployments import read_deployments
from devchain import deploy as d
from devchain.client import DevChainClient
from devchain.roles import Roles, anvil_roles


@dataclass
class LightChallenge:
    client: DevChainClient
    addresses: dict[str, str]
    roles: Roles = field(default_factory=anvil_roles)
    _contracts: dict[str, Contract] = field(default_factory=dict, repr=False)

    @classmethod
    def attach(cls, rpc_url: str, addresses: dict[str, str], roles: Roles | None = None) -> LightChallenge:
        return cls(DevChainClient(rpc_url), dict(addresses), roles or anvil_roles())

    @classmethod
    def from_deployments(cls, rpc_url: str, path: Path | str, roles: Roles | None = None) -> LightChallenge:
        return cls.attach(rpc_url, read_deployments(path), roles)

    @classmethod
    def deploy(cls, rpc_url: str, options: d.DeployOptions | None = None) -> LightChallenge:
        """Fresh deployment on a dev chain with anvil's roles."""
        roles = anvil_roles()
        return cls.attach(rpc_url, d.deploy_all(rpc_url, roles, options), roles)

    def contract(self, name: str) -> Contract:
        if name not in self._contracts:
            self._contracts[name] = self.client.contract(name, self.addresses[name])
        return self._contracts[name]

    @property
    def pay(self) -> Contract:
        return self.contract(d.CHALLENGE_PAY)

    @property
    def treasury(self) -> Contract:
        return self.contract(d.TREASURY)

    @property
    def aivm(self) -> Contract:
        return self.contract(d.AIVM)

    @property
    def task_registry(self) -> Contract:
        return self.contract(d.TASK_REGISTRY)

    @property
    def verifier(self) -> Contract:
        return self.contract(d.VERIFIER)

    @property
    def metadata(self) -> Contract:
        return self.contract(d.METADATA_REGISTRY)

    @property
    def validator_registry(self) -> Contract:
        return self.contract(d.VALIDATOR_REGISTRY)

    @property
    def token(self) -> Contract:
        return self.contract(d.TEST_TOKEN)
