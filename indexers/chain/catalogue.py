"""The event catalogue: which events of which pipeline contract the indexer publishes, and how to decode them.

The ABIs come from the project's compiled contracts (`contracts/artifacts/<Contract>.json`, key
`abi`), the one source of truth; the signatures below are the spec's (spec/chain.md §1) and serve only
until the artifacts exist, and as the test anchors that the artifacts keep the real topic0s.
Logs are matched by (address, topic0), never by topic0 alone: ChallengePay and ChallengeTaskRegistry
share the DispatcherSet topic (published too: who may dispatch is what the pipeline's writers depend on).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from eventlog.config import PROJECT_ROOT
from indexers.chain.abi import EventAbi
from indexers.chain.decode import EventDecoder

ARTIFACTS_DIR = PROJECT_ROOT / "contracts" / "artifacts"

CHALLENGE_PAY = "ChallengePay"
TREASURY = "Treasury"
AIVM = "AIVMInferenceV2"
TASK_REGISTRY = "ChallengeTaskRegistry"
METADATA_REGISTRY = "MetadataRegistry"

SPEC_SIGNATURES: dict[str, tuple[str, ...]] = {
    CHALLENGE_PAY: (
        "ChallengeCreated(uint256 indexed id, address indexed creator, uint8 kind, uint8 currency, address token,"
        " uint256 startTs, bytes32 externalId)",
        "Joined(uint256 indexed id, address indexed user, uint256 amount)",
        "ParticipantProofSubmitted(uint256 indexed id, address indexed participant, address indexed verifier, bool ok)",
        "WinnerMarked(uint256 indexed id, address indexed participant, uint256 contrib, uint256 winnersPool,"
        " uint32 winnersCount)",
        "VerificationConfigUpdated(uint256 indexed id, address verifier, uint256 proofDeadlineTs)",
        "Finalized(uint256 indexed id, uint8 status, uint8 outcome)",
        "Paused(uint256 indexed id, bool paused)",
        "Canceled(uint256 indexed id)",
        "WinnerClaimed(uint256 indexed id, address indexed user, uint256 amount)",
        "LoserClaimed(uint256 indexed id, address indexed user, uint256 amount)",
        "RefundClaimed(uint256 indexed id, address indexed user, uint256 amount)",
        "AutoDistributed(uint256 indexed id, uint256 winnersCount, uint256 losersCount)",
        "AutoRefunded(uint256 indexed id, uint256 count)",
        "DispatcherSet(address indexed addr, bool enabled)",
    ),
    TREASURY: (
        "ClaimedETH(uint256 indexed bucketId, address indexed to, uint256 amount)",
        "ClaimedERC20(uint256 indexed bucketId, address indexed token, address indexed to, uint256 amount)",
    ),
    AIVM: (
        "InferenceRequestedV2(uint256 indexed requestId, address indexed requester, bytes32 indexed taskId,"
        " string model, bytes32 promptHash, bytes32 promptId, bytes32 modelDigest, bytes32 detConfigHash)",
        "InferenceCommitted(uint256 indexed requestId, address indexed worker, bytes32 commitment)",
        "InferenceRevealed(uint256 indexed requestId, address indexed worker, bytes32 responseHash, string response)",
        "PoIAttested(bytes32 indexed taskId, address indexed validator, uint64 count, bytes32 resultHash,"
        " bytes32 transcriptHash, uint64 slot)",
        "InferenceFinalized(uint256 indexed requestId, bytes32 indexed taskId, address indexed worker,"
        " bytes32 resultHash, uint256 workerPaidWei, uint256 protocolFeeWei)",
    ),
    TASK_REGISTRY: (
        "BindingRecorded(uint256 indexed challengeId, address indexed subject, uint256 requestId, bytes32 taskId,"
        " bytes32 modelDigest, bytes32 paramsHash, bytes32 benchmarkHash, uint16 schemaVersion)",
        "BindingCleared(uint256 indexed challengeId, address indexed subject)",
        "DispatcherSet(address indexed dispatcher, bool allowed)",
    ),
    METADATA_REGISTRY: (
        "MetadataSet(address indexed challengeContract, uint256 indexed challengeId, address indexed setter,"
        " string newUri)",
        "MetadataForceSet(address indexed challengeContract, uint256 indexed challengeId, address indexed setter,"
        " string previousUri, string newUri)",
        "MetadataCleared(address indexed challengeContract, uint256 indexed challengeId, address indexed clearer)",
    ),
}

ROLES: tuple[str, ...] = tuple(SPEC_SIGNATURES)


class CatalogueError(ValueError):
    """An artifact lacks an event the pipeline needs, or a deployment lacks a contract."""


def spec_events() -> dict[str, tuple[EventAbi, ...]]:
    return {role: tuple(EventAbi.from_signature(s) for s in sigs) for role, sigs in SPEC_SIGNATURES.items()}


def artifact_events(artifacts_dir: Path = ARTIFACTS_DIR) -> dict[str, tuple[EventAbi, ...]] | None:
    """The wanted events as the compiled artifacts define them; None while the artifacts don't exist yet."""
    if not all((artifacts_dir / f"{role}.json").is_file() for role in ROLES):
        return None
    catalogue: dict[str, tuple[EventAbi, ...]] = {}
    for role, wanted in spec_events().items():
        abi = json.loads((artifacts_dir / f"{role}.json").read_text())["abi"]
        by_name = {e["name"]: EventAbi.from_json(e) for e in abi if e.get("type") == "event"}
        missing = [event.name for event in wanted if event.name not in by_name]
        if missing:
            raise CatalogueError(f"{role} artifact lacks the events {missing}")
        catalogue[role] = tuple(by_name[event.name] for event in wanted)
    return catalogue


def pipeline_events() -> dict[str, tuple[EventAbi, ...]]:
    """Role -> the events published for it: from the artifacts when present, else from the spec."""
    return artifact_events() or spec_events()


@dataclass(frozen=True)
class DecoderTable:
    """(address, topic0) -> decoder, plus the address and topic lists of the one eth_getLogs filter."""

    by_address: Mapping[str, Mapping[bytes, EventDecoder]]

    @property
    def addresses(self) -> list[str]:
        return sorted(self.by_address)

    @property
    def topic0s(self) -> list[str]:
        return sorted({"0x" + t.hex() for decoders in self.by_address.values() for t in decoders})

    def decoder_for(self, address: str, topic0: bytes) -> EventDecoder | None:
        decoders = self.by_address.get(address)
        return None if decoders is None else decoders.get(topic0)

    def __reduce__(self) -> tuple[object, ...]:
        # decoders hold compiled closures; a worker process rebuilds them from the roles and ABIs
        addresses, events = {}, {}
        for address, decoders in self.by_address.items():
            role = next(iter(decoders.values())).contract
            addresses[role] = address
            events[role] = tuple(decoder.abi for decoder in decoders.values())
        return (build_decoder_table, (addresses, events))


def build_decoder_table(
    addresses: Mapping[str, str], events: Mapping[str, Iterable[EventAbi]] | None = None
) -> DecoderTable:
    """`addresses`: role -> contract address (every role of ROLES must be deployed)."""
    events = events if events is not None else pipeline_events()
    missing = [role for role in ROLES if not addresses.get(role)]
    if missing:
        raise CatalogueError(f"no address for {missing}")
    by_address: dict[str, dict[bytes, EventDecoder]] = {}
    for role in ROLES:
        address = addresses[role].lower()
        if address in by_address:
            raise CatalogueError(f"{role} shares its address {address} with another pipeline contract")
        by_address[address] = {abi.topic0: EventDecoder(role, abi) for abi in events[role]}
    return DecoderTable(by_address)


def load_deployments(path: Path) -> dict[str, str]:
    """The deployments JSON (contract name -> address; a nested `contracts` object is accepted too)."""
    data = json.loads(path.read_text())
    contracts = data.get("contracts", data) if isinstance(data, dict) else {}
    result = {}
    for role in ROLES:
        entry = contracts.get(role)
        if isinstance(entry, dict):
            entry = entry.get("address")
        if isinstance(entry, str):
            result[role] = entry
    return result
