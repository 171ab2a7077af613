"""The contract vocabulary, written once: the deployed contracts the pipeline talks to, and the events
it indexes from each, with their signatures as the real contracts declare them (spec/chain.md §1).

The indexer's catalogue, the chain projection, the dev chain's deployment and its tests all read
these names; the 27 event signatures are the anchors the ABIs (chain/abis) are checked against.
"""

from __future__ import annotations

CHALLENGE_PAY = "ChallengePay"
TREASURY = "Treasury"
AIVM = "AIVMInferenceV2"
TASK_REGISTRY = "ChallengeTaskRegistry"
METADATA_REGISTRY = "MetadataRegistry"
VERIFIER = "ChallengePayAivmPoiVerifier"
VALIDATOR_REGISTRY = "LCAIValidatorRegistry"

# The contracts of a LightChallenge deployment whose ABIs the production chain client carries.
DEPLOYED_CONTRACTS: tuple[str, ...] = (
    CHALLENGE_PAY, TREASURY, AIVM, TASK_REGISTRY, METADATA_REGISTRY, VERIFIER, VALIDATOR_REGISTRY,
)

# The indexed events per contract. Logs are matched by (address, topic0), never by topic0 alone:
# ChallengePay and ChallengeTaskRegistry share the DispatcherSet topic.
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

# Contracts whose events the chain indexer publishes, in catalogue order.
INDEXED_CONTRACTS: tuple[str, ...] = tuple(SPEC_SIGNATURES)


def event_name(signature: str) -> str:
    return signature.partition("(")[0]


INDEXED_EVENTS: dict[str, tuple[str, ...]] = {
    contract: tuple(event_name(s) for s in signatures) for contract, signatures in SPEC_SIGNATURES.items()
}
