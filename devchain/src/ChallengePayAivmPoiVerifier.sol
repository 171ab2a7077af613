// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Owned} from "./Owned.sol";

interface IAivmForVerifier {
    function requestIdByTaskId(bytes32 taskId) external view returns (uint256);
    function poiResultHashByTask(bytes32 taskId) external view returns (bytes32);
    function poiAttestationCount(bytes32 taskId) external view returns (uint64);
    function poiQuorum() external view returns (uint64);
}

interface ITaskRegistryForVerifier {
    function getBinding(uint256 challengeId, address subject)
        external
        view
        returns (uint256, bytes32, bytes32, bytes32, bytes32, uint16, bool);
}

/// ChallengePay's verifier for AIVM proof-of-inference results (spec §1.5, §2.6, §4.4, §4.5).
/// Malformed proofs revert (ChallengePay turns that into ok=false); any failed check returns false.
contract ChallengePayAivmPoiVerifier is Owned {
    struct AivmPoiProofV1 {
        uint16 schemaVersion;
        uint256 requestId;
        bytes32 taskId;
        uint256 challengeId;
        address subject;
        bool passed;
        uint256 score;
        bytes32 evidenceHash;
        bytes32 benchmarkHash;
        bytes32 metricHash;
        uint64 evaluatedAt;
        bytes32 modelDigest;
        bytes32 paramsHash;
    }

    /// The fields of AIVMInferenceV2.requests(id) the verifier reads, by word index in its return data.
    struct RequestFacts {
        bytes32 modelDigest;
        bytes32 detConfigHash;
        bytes32 taskId;
        uint256 status;
        address worker;
        bytes32 responseHash;
        uint256 finalizedAt;
    }

    uint16 public constant RESULT_SCHEMA_V1 = 1;
    uint256 private constant STATUS_FINALIZED = 4;

    IAivmForVerifier public immutable aivm;
    ITaskRegistryForVerifier public immutable taskRegistry;

    error InvalidOwner();
    error InvalidAivm();
    error InvalidRegistry();

    constructor(address initialOwner, address aivm_, address taskRegistry_) Owned(initialOwner) {
        if (initialOwner == address(0)) revert InvalidOwner();
        if (aivm_ == address(0)) revert InvalidAivm();
        if (taskRegistry_ == address(0)) revert InvalidRegistry();
        aivm = IAivmForVerifier(aivm_);
        taskRegistry = ITaskRegistryForVerifier(taskRegistry_);
    }

    function verify(uint256 challengeId, address subject, bytes calldata proof) external view returns (bool) {
        AivmPoiProofV1 memory p = abi.decode(proof, (AivmPoiProofV1));
        if (p.schemaVersion != RESULT_SCHEMA_V1 || p.challengeId != challengeId || p.subject != subject || !p.passed) {
            return false;
        }
        if (!_bindingMatches(p)) return false;
        RequestFacts memory r = _requestFacts(p.requestId);
        if (
            r.status != STATUS_FINALIZED || r.worker == address(0) || r.finalizedAt == 0 || r.taskId != p.taskId
                || r.modelDigest != p.modelDigest || r.detConfigHash != p.paramsHash
        ) return false;
        if (aivm.requestIdByTaskId(p.taskId) != p.requestId) return false;
        if (aivm.poiResultHashByTask(p.taskId) != r.responseHash) return false;
        if (aivm.poiAttestationCount(p.taskId) < aivm.poiQuorum()) return false;
        return keccak256(bytes(_canonicalResult(challengeId))) == r.responseHash;
    }

    function previewCanonicalResultString(bytes calldata proof) external pure returns (string memory) {
        AivmPoiProofV1 memory p = abi.decode(proof, (AivmPoiProofV1));
        return _canonicalResult(p.challengeId);
    }

    function previewResponseHash(bytes calldata proof) external pure returns (bytes32) {
        AivmPoiProofV1 memory p = abi.decode(proof, (AivmPoiProofV1));
        return keccak256(bytes(_canonicalResult(p.challengeId)));
    }

    function _bindingMatches(AivmPoiProofV1 memory p) private view returns (bool) {
        (
            uint256 requestId,
            bytes32 taskId,
            bytes32 modelDigest,
            bytes32 paramsHash,
            bytes32 benchmarkHash,
            uint16 schemaVersion,
            bool exists
        ) = taskRegistry.getBinding(p.challengeId, p.subject);
        return exists && schemaVersion == p.schemaVersion && requestId == p.requestId && taskId == p.taskId
            && modelDigest == p.modelDigest && paramsHash == p.paramsHash && benchmarkHash == p.benchmarkHash;
    }

    /// requests(id) returns a flat 20-member tuple; the static members read here sit at fixed head words:
    /// 2 modelDigest, 3 detConfigHash, 6 taskId, 12 status, 13 worker, 16 responseHash, 19 finalizedAt.
    function _requestFacts(uint256 requestId) private view returns (RequestFacts memory r) {
        (bool ok, bytes memory data) =
            address(aivm).staticcall(abi.encodeWithSignature("requests(uint256)", requestId));
        require(ok && data.length >= 20 * 32, "aivm requests() failed");
        r.modelDigest = _word(data, 2);
        r.detConfigHash = _word(data, 3);
        r.taskId = _word(data, 6);
        r.status = uint256(_word(data, 12));
        r.worker = address(uint160(uint256(_word(data, 13))));
        r.responseHash = _word(data, 16);
        r.finalizedAt = uint256(_word(data, 19));
    }

    function _word(bytes memory data, uint256 index) private pure returns (bytes32 value) {
        assembly ("memory-safe") {
            value := mload(add(add(data, 32), mul(index, 32)))
        }
    }

    function _canonicalResult(uint256 challengeId) private pure returns (string memory) {
        return string.concat('{"challengeId":"', _decimal(challengeId), '","verified":true}');
    }

    function _decimal(uint256 value) private pure returns (string memory) {
        if (value == 0) return "0";
        uint256 digits;
        for (uint256 v = value; v != 0; v /= 10) digits++;
        bytes memory out = new bytes(digits);
        for (uint256 i = digits; value != 0; value /= 10) {
            out[--i] = bytes1(uint8(48 + (value % 10)));
        }
        return string(out);
    }
}
