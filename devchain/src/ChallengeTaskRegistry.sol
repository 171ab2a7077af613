// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Owned} from "./Owned.sol";

/// Binds (challengeId, subject) to the AIVM request that verifies it (spec §1.4, §2.2, §4.3).
/// recordBinding overwrites an existing binding; paramsHash and benchmarkHash may be zero.
contract ChallengeTaskRegistry is Owned {
    struct Binding {
        uint256 requestId;
        bytes32 taskId;
        bytes32 modelDigest;
        bytes32 paramsHash;
        bytes32 benchmarkHash;
        uint16 schemaVersion;
        bool exists;
    }

    mapping(uint256 => mapping(address => Binding)) private bindings;
    mapping(address => bool) public dispatchers;

    event BindingRecorded(
        uint256 indexed challengeId,
        address indexed subject,
        uint256 requestId,
        bytes32 taskId,
        bytes32 modelDigest,
        bytes32 paramsHash,
        bytes32 benchmarkHash,
        uint16 schemaVersion
    );
    event BindingCleared(uint256 indexed challengeId, address indexed subject);
    event DispatcherSet(address indexed dispatcher, bool allowed);

    error NotAuthorized();
    error InvalidSubject();
    error InvalidRequestId();
    error InvalidTask();
    error InvalidModelDigest();
    error InvalidSchemaVersion();

    constructor(address initialOwner) Owned(initialOwner) {}

    modifier onlyOwnerOrDispatcher() {
        if (msg.sender != owner && !dispatchers[msg.sender]) revert NotAuthorized();
        _;
    }

    function setDispatcher(address dispatcher, bool allowed) external onlyOwner {
        dispatchers[dispatcher] = allowed;
        emit DispatcherSet(dispatcher, allowed);
    }

    function recordBinding(
        uint256 challengeId,
        address subject,
        uint256 requestId,
        bytes32 taskId,
        bytes32 modelDigest,
        bytes32 paramsHash,
        bytes32 benchmarkHash,
        uint16 schemaVersion
    ) external onlyOwnerOrDispatcher {
        if (subject == address(0)) revert InvalidSubject();
        if (requestId == 0) revert InvalidRequestId();
        if (taskId == 0) revert InvalidTask();
        if (modelDigest == 0) revert InvalidModelDigest();
        if (schemaVersion == 0) revert InvalidSchemaVersion();
        bindings[challengeId][subject] =
            Binding(requestId, taskId, modelDigest, paramsHash, benchmarkHash, schemaVersion, true);
        emit BindingRecorded(challengeId, subject, requestId, taskId, modelDigest, paramsHash, benchmarkHash, schemaVersion);
    }

    function clearBinding(uint256 challengeId, address subject) external onlyOwnerOrDispatcher {
        delete bindings[challengeId][subject];
        emit BindingCleared(challengeId, subject);
    }

    function getBinding(uint256 challengeId, address subject)
        external
        view
        returns (
            uint256 requestId,
            bytes32 taskId,
            bytes32 modelDigest,
            bytes32 paramsHash,
            bytes32 benchmarkHash,
            uint16 schemaVersion,
            bool exists
        )
    {
        Binding storage b = bindings[challengeId][subject];
        return (b.requestId, b.taskId, b.modelDigest, b.paramsHash, b.benchmarkHash, b.schemaVersion, b.exists);
    }

    function bindingExists(uint256 challengeId, address subject) external view returns (bool) {
        return bindings[challengeId][subject].exists;
    }
}
