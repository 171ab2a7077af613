// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// Off-chain metadata URIs per (challengeContract, challengeId), current source (spec §1.6, §2.4, §7):
/// owner-only writes, write-once ownerSet (AlreadySet), explicit force-set and clear.
contract MetadataRegistry {
    address public owner;
    address public pendingOwner;
    mapping(address => mapping(uint256 => string)) private uris;

    event MetadataSet(address indexed challengeContract, uint256 indexed challengeId, address indexed setter, string newUri);
    event MetadataForceSet(
        address indexed challengeContract, uint256 indexed challengeId, address indexed setter, string previousUri, string newUri
    );
    event MetadataCleared(address indexed challengeContract, uint256 indexed challengeId, address indexed clearer);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner();
    error EmptyUri();
    error AlreadySet();
    error LenMismatch();

    constructor(address owner_) {
        owner = owner_;
        emit OwnershipTransferred(address(0), owner_);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    function transferOwnership(address newOwner) external onlyOwner {
        pendingOwner = newOwner;
        emit OwnershipTransferStarted(owner, newOwner);
    }

    function acceptOwnership() external {
        if (msg.sender != pendingOwner) revert NotOwner();
        emit OwnershipTransferred(owner, msg.sender);
        owner = msg.sender;
        pendingOwner = address(0);
    }

    function ownerSet(address challengeContract, uint256 challengeId, string calldata newUri) external onlyOwner {
        _setOnce(challengeContract, challengeId, newUri);
    }

    /// All or nothing: one conflict reverts the whole batch.
    function ownerSetBatch(address[] calldata challengeContracts, uint256[] calldata challengeIds, string[] calldata newUris)
        external
        onlyOwner
    {
        if (challengeContracts.length != challengeIds.length || challengeIds.length != newUris.length) revert LenMismatch();
        for (uint256 i = 0; i < newUris.length; i++) {
            _setOnce(challengeContracts[i], challengeIds[i], newUris[i]);
        }
    }

    function ownerForceSet(address challengeContract, uint256 challengeId, string calldata newUri) external onlyOwner {
        if (bytes(newUri).length == 0) revert EmptyUri();
        string memory previousUri = uris[challengeContract][challengeId];
        uris[challengeContract][challengeId] = newUri;
        emit MetadataForceSet(challengeContract, challengeId, msg.sender, previousUri, newUri);
    }

    function ownerClear(address challengeContract, uint256 challengeId) external onlyOwner {
        delete uris[challengeContract][challengeId];
        emit MetadataCleared(challengeContract, challengeId, msg.sender);
    }

    function uri(address challengeContract, uint256 challengeId) external view returns (string memory) {
        return uris[challengeContract][challengeId];
    }

    function hasUri(address challengeContract, uint256 challengeId) external view returns (bool) {
        return bytes(uris[challengeContract][challengeId]).length != 0;
    }

    /// One (challengeContract, challengeId) pair per index, as the real registry reads them.
    function getMany(address[] calldata challengeContracts, uint256[] calldata challengeIds)
        external
        view
        returns (string[] memory out)
    {
        if (challengeContracts.length != challengeIds.length) revert LenMismatch();
        out = new string[](challengeIds.length);
        for (uint256 i = 0; i < challengeIds.length; i++) {
            out[i] = uris[challengeContracts[i]][challengeIds[i]];
        }
    }

    function _setOnce(address challengeContract, uint256 challengeId, string calldata newUri) private {
        if (bytes(newUri).length == 0) revert EmptyUri();
        if (bytes(uris[challengeContract][challengeId]).length != 0) revert AlreadySet();
        uris[challengeContract][challengeId] = newUri;
        emit MetadataSet(challengeContract, challengeId, msg.sender, newUri);
    }
}
