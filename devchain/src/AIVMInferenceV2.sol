// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Owned} from "./Owned.sol";

interface IValidatorRegistry {
    function validators(address validator)
        external
        view
        returns (address, bytes memory, uint256, bool isActive, uint256, uint256, uint256, uint256);
}

/// Lightchain's AIVM inference market, the parts the pipeline touches (spec §1.3, §2.1, §4):
/// request -> commit -> reveal, EIP-712 PoI attestations up to quorum, finalization with fee split,
/// and the expiry exits (cancelExpired, timeoutReveal, reclaimAfterFinalizeTimeout) that emit nothing.
/// Disputes (challenge/resolveChallenge) are left out.
contract AIVMInferenceV2 is Owned {
    enum RequestStatus { None, Requested, Committed, Revealed, Finalized, Cancelled, TimedOut, Disputed }

    struct Request {
        address requester;
        string model;
        bytes32 modelDigest;
        bytes32 detConfigHash;
        bytes32 promptHash;
        bytes32 promptId;
        bytes32 taskId;
        uint256 fee;
        uint64 createdAt;
        uint64 commitDeadline;
        uint64 revealDeadline;
        uint64 finalizeDeadline;
        RequestStatus status;
        address worker;
        bytes32 commitment;
        uint64 committedAt;
        bytes32 responseHash;
        string response;
        uint64 revealedAt;
        uint64 finalizedAt;
    }

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant POI_TYPEHASH =
        keccak256("PoIAttestation(bytes32 taskId,bytes32 resultHash,bytes32 transcriptHash,uint64 slot)");
    bytes32 private constant NAME_HASH = keccak256("LCAI-PoI-Attestation");
    bytes32 private constant VERSION_HASH = keccak256("1");
    // secp256k1n / 2: signatures with a larger s are malleable duplicates (OpenZeppelin ECDSA rule)
    uint256 private constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    mapping(uint256 => Request) public requests;
    uint256 public nextRequestId = 1;
    mapping(bytes32 => uint256) public requestIdByTaskId;
    mapping(address => uint256) public pendingByRequester;

    mapping(bytes32 => bytes32) public poiResultHashByTask;
    mapping(bytes32 => bytes32) public poiTranscriptHashByTask;
    mapping(bytes32 => uint64) public poiSlotByTask;
    mapping(bytes32 => uint64) public poiAttestationCount;
    mapping(bytes32 => mapping(address => bool)) public poiAttested;
    uint64 public poiQuorum = 1;

    address public validatorRegistry;
    address public treasury;
    uint256 public protocolFeeBps;
    uint256 public minRequestFeeWei;
    uint256 public maxPendingPerRequester;
    uint256 public commitTimeoutSecs = 600;
    uint256 public revealTimeoutSecs = 1200;
    uint256 public finalizeTimeoutSecs = 3600;
    uint256 public minWorkerBondWei;
    mapping(address => uint256) public workerBond;
    mapping(address => uint256) public workerBondLocked;
    mapping(uint256 => uint256) private bondLockedFor;

    event InferenceRequestedV2(
        uint256 indexed requestId,
        address indexed requester,
        bytes32 indexed taskId,
        string model,
        bytes32 promptHash,
        bytes32 promptId,
        bytes32 modelDigest,
        bytes32 detConfigHash
    );
    event InferenceCommitted(uint256 indexed requestId, address indexed worker, bytes32 commitment);
    event InferenceRevealed(uint256 indexed requestId, address indexed worker, bytes32 responseHash, string response);
    event PoIAttested(
        bytes32 indexed taskId,
        address indexed validator,
        uint64 count,
        bytes32 resultHash,
        bytes32 transcriptHash,
        uint64 slot
    );
    event InferenceFinalized(
        uint256 indexed requestId,
        bytes32 indexed taskId,
        address indexed worker,
        bytes32 resultHash,
        uint256 workerPaidWei,
        uint256 protocolFeeWei
    );
    event WorkerBondDeposited(address indexed worker, uint256 amountWei);
    event WorkerBondWithdrawn(address indexed worker, uint256 amountWei);
    event WorkerSlashed(uint256 indexed requestId, address indexed worker, uint256 slashedWei, address indexed beneficiary);
    event EIP712DomainChanged();

    error InvalidParams();
    error InsufficientFee();
    error TooManyPending();
    error WrongStatus();
    error DeadlinePassed();
    error DeadlineNotReached();
    error InsufficientBond();
    error NotWorker();
    error NotRequester();
    error NotActiveValidator();
    error ConflictingPoIResult();
    error AlreadyFinalized();
    // declared for ABI parity with the real contract (disputes are left out; InvalidSignature is unused there too)
    error Disputed();
    error NotResolver();
    error InvalidSignature();
    error ReentrancyGuardReentrantCall();
    error ECDSAInvalidSignature();
    error ECDSAInvalidSignatureLength(uint256 length);
    error ECDSAInvalidSignatureS(bytes32 s);

    /// As the real constructor: only the validator registry; the protocol fee goes to the deployer until
    /// the owner calls setTreasury.
    constructor(address validatorRegistry_) Owned(msg.sender) {
        if (validatorRegistry_ == address(0)) revert InvalidParams();
        validatorRegistry = validatorRegistry_;
        treasury = msg.sender;
    }

    // ---------------------------------------------------------------- requests

    function requestInferenceV2(
        string calldata model,
        bytes32 promptHash,
        bytes32 promptId,
        bytes32 modelDigest,
        bytes32 detConfigHash
    ) external payable returns (uint256 requestId, bytes32 taskId) {
        if (
            bytes(model).length == 0 || promptHash == 0 || promptId == 0 || modelDigest == 0
                || detConfigHash == 0
        ) revert InvalidParams();
        if (msg.value < minRequestFeeWei) revert InsufficientFee();
        if (maxPendingPerRequester != 0 && pendingByRequester[msg.sender] >= maxPendingPerRequester) {
            revert TooManyPending();
        }
        requestId = nextRequestId++;
        taskId = taskIdFor(requestId);
        uint64 t = uint64(block.timestamp);
        Request storage r = requests[requestId];
        r.requester = msg.sender;
        r.model = model;
        r.modelDigest = modelDigest;
        r.detConfigHash = detConfigHash;
        r.promptHash = promptHash;
        r.promptId = promptId;
        r.taskId = taskId;
        r.fee = msg.value;
        r.createdAt = t;
        r.commitDeadline = uint64(t + commitTimeoutSecs);
        r.revealDeadline = uint64(t + commitTimeoutSecs + revealTimeoutSecs);
        r.finalizeDeadline = uint64(t + commitTimeoutSecs + revealTimeoutSecs + finalizeTimeoutSecs);
        r.status = RequestStatus.Requested;
        requestIdByTaskId[taskId] = requestId;
        pendingByRequester[msg.sender]++;
        emit InferenceRequestedV2(requestId, msg.sender, taskId, model, promptHash, promptId, modelDigest, detConfigHash);
    }

    function taskIdFor(uint256 requestId) public view returns (bytes32) {
        return keccak256(abi.encodePacked(block.chainid, address(this), requestId));
    }

    function commitInference(uint256 requestId, bytes32 commitment) external {
        Request storage r = requests[requestId];
        if (r.status != RequestStatus.Requested) revert WrongStatus();
        if (block.timestamp > r.commitDeadline) revert DeadlinePassed();
        if (commitment == 0) revert InvalidParams();
        if (minWorkerBondWei > 0) {
            if (workerBond[msg.sender] - workerBondLocked[msg.sender] < minWorkerBondWei) revert InsufficientBond();
            workerBondLocked[msg.sender] += minWorkerBondWei;
            bondLockedFor[requestId] = minWorkerBondWei;
        }
        r.worker = msg.sender;
        r.commitment = commitment;
        r.committedAt = uint64(block.timestamp);
        r.status = RequestStatus.Committed;
        emit InferenceCommitted(requestId, msg.sender, commitment);
    }

    function revealInference(uint256 requestId, bytes32 secret, string calldata response) external {
        Request storage r = requests[requestId];
        if (r.status != RequestStatus.Committed) revert WrongStatus();
        if (msg.sender != r.worker) revert NotWorker();
        if (block.timestamp > r.revealDeadline) revert DeadlinePassed();
        if (bytes(response).length == 0) revert InvalidParams();
        bytes32 responseHash = keccak256(bytes(response));
        require(
            keccak256(abi.encodePacked(requestId, msg.sender, secret, responseHash)) == r.commitment,
            "commitment mismatch"
        );
        r.responseHash = responseHash;
        r.response = response;
        r.revealedAt = uint64(block.timestamp);
        r.status = RequestStatus.Revealed;
        emit InferenceRevealed(requestId, msg.sender, responseHash, response);
        _tryFinalize(requestId);
    }

    // ---------------------------------------------------------------- attestations

    function submitPoIAttestation(
        bytes32 taskId,
        bytes32 resultHash,
        bytes32 transcriptHash,
        uint64 slot,
        bytes calldata signature
    ) external {
        if (taskId == 0 || resultHash == 0) revert InvalidParams();
        address signer = _recover(_attestationDigest(taskId, resultHash, transcriptHash, slot), signature);
        (,,, bool isActive,,,,) = IValidatorRegistry(validatorRegistry).validators(signer);
        if (!isActive) revert NotActiveValidator();
        if (poiAttested[taskId][signer]) return;

        _recordPoIResult(taskId, resultHash, transcriptHash, slot);
        poiAttested[taskId][signer] = true;
        uint64 count = ++poiAttestationCount[taskId];
        emit PoIAttested(taskId, signer, count, resultHash, transcriptHash, slot);

        uint256 requestId = requestIdByTaskId[taskId];
        if (requestId != 0) _tryFinalize(requestId);
    }

    /// The first attestation fixes the result hash; transcript hash and slot are fixed by the first
    /// attestation that carries a non-zero value, after which anything else conflicts.
    function _recordPoIResult(bytes32 taskId, bytes32 resultHash, bytes32 transcriptHash, uint64 slot) private {
        bytes32 knownResult = poiResultHashByTask[taskId];
        if (knownResult == 0) {
            poiResultHashByTask[taskId] = resultHash;
        } else if (knownResult != resultHash) {
            revert ConflictingPoIResult();
        }
        bytes32 knownTranscript = poiTranscriptHashByTask[taskId];
        if (knownTranscript == 0) {
            if (transcriptHash != 0) poiTranscriptHashByTask[taskId] = transcriptHash;
        } else if (knownTranscript != transcriptHash) {
            revert ConflictingPoIResult();
        }
        uint64 knownSlot = poiSlotByTask[taskId];
        if (knownSlot == 0) {
            if (slot != 0) poiSlotByTask[taskId] = slot;
        } else if (knownSlot != slot) {
            revert ConflictingPoIResult();
        }
    }

    function domainSeparator() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    function _attestationDigest(bytes32 taskId, bytes32 resultHash, bytes32 transcriptHash, uint64 slot)
        private
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(POI_TYPEHASH, taskId, resultHash, transcriptHash, slot));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address signer) {
        if (signature.length != 65) revert ECDSAInvalidSignatureLength(signature.length);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > HALF_ORDER) revert ECDSAInvalidSignatureS(s);
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert ECDSAInvalidSignature();
    }

    // ---------------------------------------------------------------- finalization

    /// Finalizes silently-or-not: declines without an event when any condition is unmet.
    function _tryFinalize(uint256 requestId) private {
        Request storage r = requests[requestId];
        if (r.status != RequestStatus.Revealed || r.finalizedAt != 0) return;
        if (block.timestamp > r.finalizeDeadline) return;
        bytes32 taskId = r.taskId;
        if (r.responseHash == 0 || poiResultHashByTask[taskId] != r.responseHash) return;
        if (poiAttestationCount[taskId] < poiQuorum) return;

        r.status = RequestStatus.Finalized;
        r.finalizedAt = uint64(block.timestamp);
        _releasePending(r.requester);
        _unlockBond(requestId, r.worker);
        uint256 protocolFee = (r.fee * protocolFeeBps) / 10_000;
        uint256 workerPaid = r.fee - protocolFee;
        _pay(treasury, protocolFee);
        _pay(r.worker, workerPaid);
        emit InferenceFinalized(requestId, taskId, r.worker, r.responseHash, workerPaid, protocolFee);
    }

    // ---------------------------------------------------------------- expiry exits (no events)

    function cancelExpired(uint256 requestId) external {
        Request storage r = requests[requestId];
        if (r.status != RequestStatus.Requested) revert WrongStatus();
        if (msg.sender != r.requester) revert NotRequester();
        if (block.timestamp <= r.commitDeadline) revert DeadlineNotReached();
        r.status = RequestStatus.Cancelled;
        _releasePending(r.requester);
        _pay(r.requester, r.fee);
    }

    function timeoutReveal(uint256 requestId) external {
        Request storage r = requests[requestId];
        if (r.status != RequestStatus.Committed) revert WrongStatus();
        if (block.timestamp <= r.revealDeadline) revert DeadlineNotReached();
        r.status = RequestStatus.TimedOut;
        _releasePending(r.requester);
        uint256 slashed = bondLockedFor[requestId];
        if (slashed > 0) {
            bondLockedFor[requestId] = 0;
            workerBondLocked[r.worker] -= slashed;
            workerBond[r.worker] -= slashed;
            emit WorkerSlashed(requestId, r.worker, slashed, r.requester);
        }
        _pay(r.requester, r.fee + slashed);
    }

    function reclaimAfterFinalizeTimeout(uint256 requestId) external {
        Request storage r = requests[requestId];
        if (r.status != RequestStatus.Revealed) revert WrongStatus();
        if (msg.sender != r.requester) revert NotRequester();
        if (block.timestamp <= r.finalizeDeadline) revert DeadlineNotReached();
        r.status = RequestStatus.Cancelled;
        _releasePending(r.requester);
        _unlockBond(requestId, r.worker);
        _pay(r.requester, r.fee);
    }

    // ---------------------------------------------------------------- worker bonds

    function depositWorkerBond() external payable {
        if (msg.value == 0) revert InvalidParams();
        workerBond[msg.sender] += msg.value;
        emit WorkerBondDeposited(msg.sender, msg.value);
    }

    function withdrawWorkerBond(uint256 amountWei) external {
        if (amountWei == 0 || workerBond[msg.sender] - workerBondLocked[msg.sender] < amountWei) revert InsufficientBond();
        workerBond[msg.sender] -= amountWei;
        _pay(msg.sender, amountWei);
        emit WorkerBondWithdrawn(msg.sender, amountWei);
    }

    // ---------------------------------------------------------------- owner settings

    function setPoIQuorum(uint64 quorum) external onlyOwner {
        if (quorum == 0) revert InvalidParams();
        poiQuorum = quorum;
    }

    function setTimeouts(uint256 commitSecs, uint256 revealSecs, uint256 finalizeSecs) external onlyOwner {
        if (commitSecs == 0 || revealSecs == 0 || finalizeSecs == 0) revert InvalidParams();
        commitTimeoutSecs = commitSecs;
        revealTimeoutSecs = revealSecs;
        finalizeTimeoutSecs = finalizeSecs;
    }

    function setSpamControls(uint256 minFeeWei, uint256 maxPending) external onlyOwner {
        minRequestFeeWei = minFeeWei;
        maxPendingPerRequester = maxPending;
    }

    function setWorkerBondParams(uint256 minBondWei) external onlyOwner {
        minWorkerBondWei = minBondWei;
    }

    function setTreasury(address treasury_) external onlyOwner {
        if (treasury_ == address(0)) revert InvalidParams();
        treasury = treasury_;
    }

    function setProtocolFee(uint256 bps) external onlyOwner {
        if (bps > 10_000) revert InvalidParams();
        protocolFeeBps = bps;
    }

    // ---------------------------------------------------------------- internals

    function _releasePending(address requester) private {
        if (pendingByRequester[requester] > 0) pendingByRequester[requester]--;
    }

    function _unlockBond(uint256 requestId, address worker) private {
        uint256 locked = bondLockedFor[requestId];
        if (locked > 0) {
            bondLockedFor[requestId] = 0;
            workerBondLocked[worker] -= locked;
        }
    }

    function _pay(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool ok,) = to.call{value: amount}("");
        require(ok, "ETH_TRANSFER_FAILED");
    }
}
