// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

interface IERC20Minimal {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// Bucketed custody of challenge funds (spec §1.2, §3.5). Buckets are credited by ChallengePay (the
/// OPERATOR_ROLE holder), operators turn bucket funds into per-recipient allowances (Grant*), and
/// recipients -- or anyone delivering to them -- claim the allowance (Claimed*), the only step that
/// moves money out.
contract Treasury {
    bytes32 public constant DEFAULT_ADMIN_ROLE = 0x00;
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 public constant SWEEPER_ROLE = keccak256("SWEEPER_ROLE");

    mapping(bytes32 => mapping(address => bool)) private roles;

    /// Unallocated funds per bucket; granting moves them into allowances. The views keep the real
    /// contract's names and key order: bucketEthBalance(bucketId), bucketErc20Balance(token, bucketId),
    /// ethAllowanceOf(bucketId, to), allowanceOf(token, bucketId, to).
    mapping(uint256 => uint256) public bucketEthBalance;
    mapping(address => mapping(uint256 => uint256)) public bucketErc20Balance;
    mapping(uint256 => mapping(address => uint256)) public ethAllowanceOf;
    mapping(address => mapping(uint256 => mapping(address => uint256))) public allowanceOf;

    bool private entered;

    event ClaimedETH(uint256 indexed bucketId, address indexed to, uint256 amount);
    event ClaimedERC20(uint256 indexed bucketId, address indexed token, address indexed to, uint256 amount);
    event BucketCreditedETH(uint256 indexed bucketId, address indexed from, uint256 amount);
    event BucketCreditedERC20(uint256 indexed bucketId, address indexed token, address indexed from, uint256 amount);
    event GrantETH(uint256 indexed bucketId, address indexed to, uint256 amount, address operator);
    event GrantERC20(uint256 indexed bucketId, address indexed token, address indexed to, uint256 amount, address operator);
    event Received(address indexed from, uint256 amount);
    event ReceivedERC20(address indexed token, address indexed from, uint256 amount);
    event RoleGranted(bytes32 indexed role, address indexed account, address indexed sender);
    event RoleRevoked(bytes32 indexed role, address indexed account, address indexed sender);

    error AccessControlUnauthorizedAccount(address account, bytes32 neededRole);
    error InvalidBucket();
    error AmountZero();
    error ZeroAddress();
    error InsufficientBucketBalance();
    error AllowanceTooLow();
    error ReentrancyGuardReentrantCall();

    /// As the real constructor: the admin also sweeps; the operator (ChallengePay) may be granted later.
    constructor(address admin, address initialOperator) {
        if (admin == address(0)) revert ZeroAddress();
        _grant(DEFAULT_ADMIN_ROLE, admin);
        _grant(SWEEPER_ROLE, admin);
        if (initialOperator != address(0)) _grant(OPERATOR_ROLE, initialOperator);
    }

    modifier onlyRole(bytes32 role) {
        if (!roles[role][msg.sender]) revert AccessControlUnauthorizedAccount(msg.sender, role);
        _;
    }

    modifier nonReentrant() {
        if (entered) revert ReentrancyGuardReentrantCall();
        entered = true;
        _;
        entered = false;
    }

    modifier validBucket(uint256 bucketId) {
        if (bucketId == 0) revert InvalidBucket();
        _;
    }

    // ---------------------------------------------------------------- roles

    function hasRole(bytes32 role, address account) external view returns (bool) {
        return roles[role][account];
    }

    function grantRole(bytes32 role, address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _grant(role, account);
    }

    function revokeRole(bytes32 role, address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (roles[role][account]) {
            roles[role][account] = false;
            emit RoleRevoked(role, account, msg.sender);
        }
    }

    function _grant(bytes32 role, address account) private {
        if (!roles[role][account]) {
            roles[role][account] = true;
            emit RoleGranted(role, account, msg.sender);
        }
    }

    // ---------------------------------------------------------------- deposits

    receive() external payable {
        emit Received(msg.sender, msg.value);
    }

    function depositETH(uint256 bucketId) external payable onlyRole(OPERATOR_ROLE) validBucket(bucketId) {
        if (msg.value == 0) revert AmountZero();
        bucketEthBalance[bucketId] += msg.value;
        emit BucketCreditedETH(bucketId, msg.sender, msg.value);
    }

    function depositERC20From(uint256 bucketId, address token, address from, uint256 amount)
        external
        onlyRole(OPERATOR_ROLE)
        validBucket(bucketId)
        nonReentrant
    {
        if (token == address(0) || from == address(0)) revert ZeroAddress();
        if (amount == 0) revert AmountZero();
        require(IERC20Minimal(token).transferFrom(from, address(this), amount), "ERC20_TRANSFER_FAILED");
        bucketErc20Balance[token][bucketId] += amount;
        emit BucketCreditedERC20(bucketId, token, from, amount);
        emit ReceivedERC20(token, from, amount);
    }

    // ---------------------------------------------------------------- allowances

    function grantETH(uint256 bucketId, address to, uint256 amount) external onlyRole(OPERATOR_ROLE) validBucket(bucketId) {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert AmountZero();
        if (bucketEthBalance[bucketId] < amount) revert InsufficientBucketBalance();
        bucketEthBalance[bucketId] -= amount;
        ethAllowanceOf[bucketId][to] += amount;
        emit GrantETH(bucketId, to, amount, msg.sender);
    }

    function grantERC20(uint256 bucketId, address token, address to, uint256 amount)
        external
        onlyRole(OPERATOR_ROLE)
        validBucket(bucketId)
    {
        if (to == address(0) || token == address(0)) revert ZeroAddress();
        if (amount == 0) revert AmountZero();
        if (bucketErc20Balance[token][bucketId] < amount) revert InsufficientBucketBalance();
        bucketErc20Balance[token][bucketId] -= amount;
        allowanceOf[token][bucketId][to] += amount;
        emit GrantERC20(bucketId, token, to, amount, msg.sender);
    }

    // ---------------------------------------------------------------- claims (money leaves here)

    function claimETH(uint256 bucketId, uint256 amount) external {
        _claimETH(bucketId, msg.sender, amount);
    }

    /// Permissionless delivery of `to`'s allowance to `to`.
    function claimETHTo(uint256 bucketId, address to, uint256 amount) external {
        _claimETH(bucketId, to, amount);
    }

    function claimERC20(uint256 bucketId, address token, uint256 amount) external {
        _claimERC20(bucketId, token, msg.sender, amount);
    }

    function claimERC20To(uint256 bucketId, address token, address to, uint256 amount) external {
        _claimERC20(bucketId, token, to, amount);
    }

    function _claimETH(uint256 bucketId, address to, uint256 amount) private nonReentrant validBucket(bucketId) {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert AmountZero();
        if (ethAllowanceOf[bucketId][to] < amount) revert AllowanceTooLow();
        ethAllowanceOf[bucketId][to] -= amount;
        (bool ok,) = to.call{value: amount}("");
        require(ok, "ETH_TRANSFER_FAILED");
        emit ClaimedETH(bucketId, to, amount);
    }

    function _claimERC20(uint256 bucketId, address token, address to, uint256 amount)
        private
        nonReentrant
        validBucket(bucketId)
    {
        if (to == address(0) || token == address(0)) revert ZeroAddress();
        if (amount == 0) revert AmountZero();
        if (allowanceOf[token][bucketId][to] < amount) revert AllowanceTooLow();
        allowanceOf[token][bucketId][to] -= amount;
        require(IERC20Minimal(token).transfer(to, amount), "ERC20_TRANSFER_FAILED");
        emit ClaimedERC20(bucketId, token, to, amount);
    }
}
