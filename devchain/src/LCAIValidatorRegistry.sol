// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// The testnet validator registry: registering with a non-zero stake activates the validator at once.
contract LCAIValidatorRegistry {
    struct Validator {
        address validatorAddress;
        bytes publicKey;
        uint256 stake;
        bool isActive;
        uint256 performanceScore;
        uint256 slashCount;
        uint256 lastHeartbeat;
        uint256 joinedAt;
    }

    mapping(address => Validator) public validators;

    error InvalidParams();

    function registerValidator(bytes calldata publicKey) external payable {
        if (msg.value == 0) revert InvalidParams();
        Validator storage v = validators[msg.sender];
        v.validatorAddress = msg.sender;
        v.publicKey = publicKey;
        v.stake += msg.value;
        v.isActive = true;
        v.lastHeartbeat = block.timestamp;
        if (v.joinedAt == 0) v.joinedAt = block.timestamp;
    }
}
