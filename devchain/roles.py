"""Which of anvil's dev accounts plays which pipeline role (spec §2.7) in local deployments."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from devchain.client import dev_accounts


@dataclass(frozen=True)
class Roles:
    """admin: deployer, ChallengePay admin, Treasury admin, owner of the registries and the AIVM.
    worker (LCAI_WORKER_PK): AIVM requester, task-registry dispatcher, ChallengePay dispatcher.
    finalizer (LCAI_FINALIZE_PK): ChallengePay dispatcher for submitProofFor.
    players: challenge creators and participants. validators: AIVM workers and PoI validators of the
    simulator. protocol: ChallengePay's protocol fee recipient and the AIVM's fee treasury."""

    admin: LocalAccount
    worker: LocalAccount
    finalizer: LocalAccount
    players: tuple[LocalAccount, ...]
    validators: tuple[LocalAccount, ...]
    protocol: LocalAccount

    def as_json(self) -> dict[str, object]:
        """Addresses only (never keys), for the deployments file."""
        return {
            "admin": self.admin.address,
            "worker": self.worker.address,
            "finalizer": self.finalizer.address,
            "players": [a.address for a in self.players],
            "validators": [a.address for a in self.validators],
            "protocol": self.protocol.address,
        }


def anvil_roles() -> Roles:
    a = dev_accounts()
    return Roles(admin=a[0], worker=a[1], finalizer=a[2], players=a[3:7], validators=a[7:9], protocol=a[9])
