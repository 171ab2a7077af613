// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

interface ITreasury {
    function depositETH(uint256 bucketId) external payable;
    function depositERC20From(uint256 bucketId, address token, address from, uint256 amount) external;
    function grantETH(uint256 bucketId, address to, uint256 amount) external;
    function grantERC20(uint256 bucketId, address token, address to, uint256 amount) external;
    function claimETHTo(uint256 bucketId, address to, uint256 amount) external;
    function claimERC20To(uint256 bucketId, address token, address to, uint256 amount) external;
}

interface IProofVerifier {
    function verify(uint256 challengeId, address subject, bytes calldata proof) external view returns (bool);
}

/// Stake-backed challenges (spec §1.1, §2.3, §3): create, join, proofs through a verifier, a binary
/// outcome at finalize, fee booking, and claims that become Treasury allowances. Left out: EIP-2771
/// forwarding, creator/token allowlists, fee caps, lead-time/min-stake setters, two-step admin transfer.
contract ChallengePay {
    enum Status { Active, Finalized, Canceled }
    enum Outcome { None, Success, Fail }
    enum Currency { NATIVE, ERC20 }

    struct CreateParams {
        uint8 kind;
        Currency currency;
        address token;
        uint256 stakeAmount;
        uint256 joinClosesTs;
        uint256 startTs;
        uint256 duration;
        uint256 maxParticipants;
        address verifier;
        uint256 proofDeadlineTs;
        bytes32 externalId;
    }

    /// Stored as-is and returned by getChallenge (21 members).
    struct ChallengeView {
        uint256 id;
        uint8 kind;
        Status status;
        Outcome outcome;
        address creator;
        Currency currency;
        address token;
        uint256 stake;
        uint256 joinClosesTs;
        uint256 startTs;
        uint256 duration;
        uint256 maxParticipants;
        uint256 pool;
        uint256 participantsCount;
        address verifier;
        uint256 proofDeadlineTs;
        uint32 winnersCount;
        uint256 winnersPool;
        bool paused;
        bool canceled;
        bool payoutsDone;
    }

    struct FeeConfig {
        uint16 forfeitFeeBps;
        uint16 protocolBps;
        uint16 creatorBps;
        uint16 cashbackBps;
    }

    struct Snapshot {
        bool set;
        bool success;
        uint256 committedPool;
        uint256 forfeitedPool;
        uint256 cashback;
        uint256 forfeitedAfterCashback;
        uint256 protocolAmt;
        uint256 creatorAmt;
        uint256 perCommittedBonusX;
        uint256 perCashbackX;
    }

    uint256 private constant BPS = 10_000;
    uint256 private constant ONE = 1e18;

    ITreasury public immutable treasury;
    address public immutable protocol;
    address public admin;
    bool public globalPaused;
    uint256 public nextChallengeId = 2; // 0 and 1 are reserved
    uint256 public minLeadTime = 60;
    uint256 public maxLeadTime = 365 days;
    FeeConfig public feeConfig;

    mapping(address => bool) public dispatchers;
    mapping(uint256 => ChallengeView) private challenges;
    mapping(uint256 => FeeConfig) private feesOf;
    mapping(uint256 => Snapshot) private snapshots;
    mapping(uint256 => mapping(address => uint256)) private contrib;
    mapping(uint256 => mapping(address => bool)) private participantSeen;
    mapping(uint256 => mapping(address => bool)) private winner;
    mapping(uint256 => mapping(address => bool)) private winnerClaimed;
    mapping(uint256 => mapping(address => bool)) private loserClaimed;
    mapping(uint256 => mapping(address => bool)) private refundClaimed;
    mapping(bytes32 => bool) public externalIdUsed;
    mapping(bytes32 => uint256) public idByExternalId;
    bool private entered;

    event ChallengeCreated(
        uint256 indexed id, address indexed creator, uint8 kind, uint8 currency, address token, uint256 startTs, bytes32 externalId
    );
    event Joined(uint256 indexed id, address indexed user, uint256 amount);
    event ParticipantProofSubmitted(uint256 indexed id, address indexed participant, address indexed verifier, bool ok);
    event WinnerMarked(uint256 indexed id, address indexed participant, uint256 contrib, uint256 winnersPool, uint32 winnersCount);
    event VerificationConfigUpdated(uint256 indexed id, address verifier, uint256 proofDeadlineTs);
    event Finalized(uint256 indexed id, uint8 status, uint8 outcome);
    event Paused(uint256 indexed id, bool paused);
    event Canceled(uint256 indexed id);
    event FeesBooked(uint256 indexed id, uint256 protocolAmt, uint256 creatorAmt, uint256 cashback);
    event SnapshotSet(uint256 indexed id, bool success);
    event WinnerClaimed(uint256 indexed id, address indexed user, uint256 amount);
    event LoserClaimed(uint256 indexed id, address indexed user, uint256 amount);
    event RefundClaimed(uint256 indexed id, address indexed user, uint256 amount);
    event AutoDistributed(uint256 indexed id, uint256 winnersCount, uint256 losersCount);
    event AutoRefunded(uint256 indexed id, uint256 count);
    event GlobalPaused(bool paused);
    event FeeConfigSet(uint16 forfeitFeeBps, uint16 protocolBps, uint16 creatorBps, uint16 cashbackBps);
    event DispatcherSet(address indexed addr, bool enabled);

    error AlreadyCanceled();
    error AlreadyFinalized();
    error AlreadyWinner();
    error AmountZero();
    error BeforeDeadline();
    error ChallengeNotFinalized();
    error ChallengePaused();
    error DeadlineRequired();
    error ExternalIdAlreadyUsed();
    error GlobalPausedError();
    error InvalidBounds();
    error JoinClosesAfterStart();
    error JoinWindowClosed();
    error LeadTimeOutOfBounds();
    error MaxParticipantsReached();
    error NotActive();
    error NotAdmin();
    error NotCreatorOrAdmin();
    error NotEligible();
    error NotPendingAdmin(); // declared for ABI parity: two-step admin transfer is left out
    error ProofDeadlineBeforeEnd();
    error ProofNotOpen();
    error ProofWindowClosed();
    error ReentrancyGuardReentrantCall();
    error StartTooSoon();
    error TightenOnlyViolation(); // declared for ABI parity: proofTightenOnly is left out
    error TokenNotAllowed();
    error WrongMsgValue();
    error ZeroAddress();

    constructor(address treasury_, address protocol_) {
        if (treasury_ == address(0) || protocol_ == address(0)) revert ZeroAddress();
        treasury = ITreasury(treasury_);
        protocol = protocol_;
        admin = msg.sender;
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin();
        _;
    }

    modifier onlyDispatcherOrAdmin() {
        if (!dispatchers[msg.sender] && msg.sender != admin) revert NotAdmin();
        _;
    }

    modifier notPaused() {
        if (globalPaused) revert GlobalPausedError();
        _;
    }

    modifier nonReentrant() {
        if (entered) revert ReentrancyGuardReentrantCall();
        entered = true;
        _;
        entered = false;
    }

    // ---------------------------------------------------------------- admin

    function setDispatcher(address addr, bool enabled) external onlyAdmin {
        if (addr == address(0)) revert ZeroAddress();
        dispatchers[addr] = enabled;
        emit DispatcherSet(addr, enabled);
    }

    function pauseAll(bool paused_) external onlyAdmin {
        globalPaused = paused_;
        emit GlobalPaused(paused_);
    }

    /// One struct, as the real contract takes it (its members are FeeConfigSet's).
    function setFeeConfig(FeeConfig calldata f) external onlyAdmin {
        if (f.forfeitFeeBps > BPS || f.cashbackBps > BPS || uint256(f.protocolBps) + f.creatorBps > f.forfeitFeeBps) {
            revert InvalidBounds();
        }
        feeConfig = f;
        emit FeeConfigSet(f.forfeitFeeBps, f.protocolBps, f.creatorBps, f.cashbackBps);
    }

    function pauseChallenge(uint256 id, bool paused_) external onlyAdmin {
        challenges[id].paused = paused_;
        emit Paused(id, paused_);
    }

    function setVerificationConfig(uint256 id, address verifier, uint256 proofDeadlineTs) external onlyAdmin {
        ChallengeView storage c = challenges[id];
        if (c.status != Status.Active) revert NotActive();
        if (verifier == address(0)) revert ZeroAddress();
        if (verifier != c.verifier && c.participantsCount != 0) revert InvalidBounds();
        if (proofDeadlineTs < c.startTs + c.duration) revert ProofDeadlineBeforeEnd();
        c.verifier = verifier;
        c.proofDeadlineTs = proofDeadlineTs;
        emit VerificationConfigUpdated(id, verifier, proofDeadlineTs);
    }

    // ---------------------------------------------------------------- create and join

    function createChallenge(CreateParams calldata p) external payable notPaused nonReentrant returns (uint256 id) {
        _checkCreateParams(p);
        id = nextChallengeId++;
        ChallengeView storage c = challenges[id];
        c.id = id;
        c.kind = p.kind;
        c.creator = msg.sender;
        c.currency = p.currency;
        c.token = p.token;
        c.stake = p.stakeAmount;
        c.joinClosesTs = p.joinClosesTs == 0 ? p.startTs : p.joinClosesTs;
        c.startTs = p.startTs;
        c.duration = p.duration;
        c.maxParticipants = p.maxParticipants;
        c.verifier = p.verifier;
        c.proofDeadlineTs = p.proofDeadlineTs;
        feesOf[id] = feeConfig;
        if (p.externalId != 0) {
            externalIdUsed[p.externalId] = true;
            idByExternalId[p.externalId] = id;
        }
        if (p.stakeAmount > 0) _addContribution(c, msg.sender, p.stakeAmount);
        emit ChallengeCreated(id, msg.sender, p.kind, uint8(p.currency), p.token, p.startTs, p.externalId);
    }

    function _checkCreateParams(CreateParams calldata p) private view {
        if (p.startTs <= block.timestamp) revert StartTooSoon();
        if (p.duration == 0) revert InvalidBounds();
        uint256 lead = p.startTs - block.timestamp;
        if (lead < minLeadTime || lead > maxLeadTime) revert LeadTimeOutOfBounds();
        uint256 joinCloses = p.joinClosesTs == 0 ? p.startTs : p.joinClosesTs;
        if (joinCloses > p.startTs) revert JoinClosesAfterStart();
        if (joinCloses <= block.timestamp) revert InvalidBounds();
        if (p.verifier == address(0)) revert ZeroAddress();
        if (p.proofDeadlineTs == 0) revert DeadlineRequired();
        if (p.proofDeadlineTs < p.startTs + p.duration) revert ProofDeadlineBeforeEnd();
        if (p.currency == Currency.ERC20 && p.token == address(0)) revert ZeroAddress();
        if (p.externalId != 0 && externalIdUsed[p.externalId]) revert ExternalIdAlreadyUsed();
        if (msg.value != (p.currency == Currency.NATIVE ? p.stakeAmount : 0)) revert WrongMsgValue();
    }

    function joinChallengeNative(uint256 id) external payable notPaused nonReentrant {
        ChallengeView storage c = _joinable(id, msg.value);
        if (c.currency != Currency.NATIVE) revert TokenNotAllowed();
        _addContribution(c, msg.sender, msg.value);
        emit Joined(id, msg.sender, msg.value);
    }

    function joinChallengeERC20(uint256 id, uint256 amount) external notPaused nonReentrant {
        ChallengeView storage c = _joinable(id, amount);
        if (c.currency != Currency.ERC20) revert TokenNotAllowed();
        _addContribution(c, msg.sender, amount);
        emit Joined(id, msg.sender, amount);
    }

    function _joinable(uint256 id, uint256 amount) private view returns (ChallengeView storage c) {
        c = challenges[id];
        if (amount == 0) revert AmountZero();
        if (c.paused || c.canceled) revert ChallengePaused();
        if (c.status != Status.Active) revert NotActive();
        if (block.timestamp >= c.joinClosesTs) revert JoinWindowClosed();
        if (c.maxParticipants != 0 && !participantSeen[id][msg.sender] && c.participantsCount >= c.maxParticipants) {
            revert MaxParticipantsReached();
        }
    }

    /// Deposits into the challenge's Treasury bucket and books the contribution.
    function _addContribution(ChallengeView storage c, address user, uint256 amount) private {
        uint256 id = c.id;
        if (c.currency == Currency.NATIVE) {
            treasury.depositETH{value: amount}(id);
        } else {
            treasury.depositERC20From(id, c.token, user, amount);
        }
        if (!participantSeen[id][user]) {
            participantSeen[id][user] = true;
            c.participantsCount += 1;
        }
        contrib[id][user] += amount;
        c.pool += amount;
    }

    // ---------------------------------------------------------------- proofs

    function submitMyProof(uint256 id, bytes calldata proof) external notPaused nonReentrant {
        _submitProof(id, msg.sender, proof);
    }

    function submitProofFor(uint256 id, address participant, bytes calldata proof)
        external
        onlyDispatcherOrAdmin
        notPaused
        nonReentrant
    {
        _submitProof(id, participant, proof);
    }

    function submitProofForBatch(uint256 id, address[] calldata participants, bytes[] calldata proofs)
        external
        onlyDispatcherOrAdmin
        notPaused
        nonReentrant
    {
        if (participants.length != proofs.length) revert InvalidBounds();
        for (uint256 i = 0; i < participants.length; i++) {
            _submitProof(id, participants[i], proofs[i]);
        }
    }

    function _submitProof(uint256 id, address participant, bytes calldata proof) private {
        if (participant == address(0)) revert ZeroAddress();
        ChallengeView storage c = challenges[id];
        if (c.paused || c.canceled) revert ChallengePaused();
        if (c.status != Status.Active) revert NotActive();
        if (c.payoutsDone) revert AlreadyFinalized();
        if (block.timestamp < c.startTs) revert ProofNotOpen();
        if (block.timestamp > c.proofDeadlineTs) revert ProofWindowClosed();
        uint256 amount = contrib[id][participant];
        if (amount == 0) revert NotEligible();

        bool ok;
        try IProofVerifier(c.verifier).verify(id, participant, proof) returns (bool verified) {
            ok = verified;
        } catch {
            ok = false;
        }
        emit ParticipantProofSubmitted(id, participant, c.verifier, ok);
        if (!ok) return;
        if (winner[id][participant]) revert AlreadyWinner();
        winner[id][participant] = true;
        c.winnersPool += amount;
        c.winnersCount += 1;
        emit WinnerMarked(id, participant, amount, c.winnersPool, c.winnersCount);
    }

    // ---------------------------------------------------------------- finalize

    /// Permissionless once both the end and the proof deadline have passed. Like the original it
    /// does not check that the id was ever created.
    function finalize(uint256 id) external notPaused nonReentrant {
        ChallengeView storage c = challenges[id];
        if (c.payoutsDone) revert AlreadyFinalized();
        if (c.status != Status.Active) revert NotActive();
        if (block.timestamp < c.startTs + c.duration || block.timestamp < c.proofDeadlineTs) revert BeforeDeadline();

        c.status = Status.Finalized;
        c.outcome = c.winnersPool > 0 ? Outcome.Success : Outcome.Fail;
        Snapshot storage s = snapshots[id];
        _bookSnapshot(c, feesOf[id], s);
        if (c.winnersPool == 0 && s.forfeitedAfterCashback - (s.protocolAmt + s.creatorAmt) > 0) {
            // nobody won: what winners would have shared goes to the protocol
            _grant(c, protocol, s.forfeitedAfterCashback - (s.protocolAmt + s.creatorAmt));
        }
        if (s.protocolAmt > 0) _grant(c, protocol, s.protocolAmt);
        if (s.creatorAmt > 0) _grant(c, c.creator, s.creatorAmt);
        c.pool = 0;
        c.payoutsDone = true;
        // the original takes the id for these two from storage (0 for never-created ids)
        emit FeesBooked(c.id, s.protocolAmt, s.creatorAmt, s.cashback);
        emit SnapshotSet(c.id, s.success);
        emit Finalized(id, uint8(Status.Finalized), uint8(c.outcome));
    }

    /// Fee booking (spec §3.5). `forfeitedAfterCashback` keeps the losers' pool after cashback; the
    /// winners' share of it is `forfeitedAfterCashback - protocolAmt - creatorAmt`.
    function _bookSnapshot(ChallengeView storage c, FeeConfig memory fees, Snapshot storage s) private {
        uint256 losersPool = c.pool - c.winnersPool;
        uint256 cashback = (losersPool * fees.cashbackBps) / BPS;
        uint256 afterCashback = losersPool - cashback;
        uint256 feeGross = (afterCashback * fees.forfeitFeeBps) / BPS;
        uint256 protocolAmt = (afterCashback * fees.protocolBps) / BPS;
        uint256 creatorAmt = (afterCashback * fees.creatorBps) / BPS;
        protocolAmt += feeGross - (protocolAmt + creatorAmt);
        uint256 distributable = afterCashback - feeGross;

        s.set = true;
        s.success = c.winnersPool > 0;
        s.committedPool = c.winnersPool;
        s.forfeitedPool = losersPool;
        s.cashback = cashback;
        s.forfeitedAfterCashback = afterCashback;
        s.protocolAmt = protocolAmt;
        s.creatorAmt = creatorAmt;
        s.perCommittedBonusX = (distributable > 0 && c.winnersPool > 0) ? (distributable * ONE) / c.winnersPool : 0;
        s.perCashbackX = (cashback > 0 && losersPool > 0) ? (cashback * ONE) / losersPool : 0;
    }

    // ---------------------------------------------------------------- claims

    function claimWinner(uint256 id) external notPaused nonReentrant {
        uint256 amount = _takeWinnerClaim(id, msg.sender);
        _grant(challenges[id], msg.sender, amount);
        emit WinnerClaimed(id, msg.sender, amount);
    }

    function claimLoser(uint256 id) external notPaused nonReentrant {
        if (snapshots[id].perCashbackX == 0) revert NotEligible();
        uint256 amount = _takeLoserClaim(id, msg.sender);
        if (amount > 0) _grant(challenges[id], msg.sender, amount);
        emit LoserClaimed(id, msg.sender, amount);
    }

    function claimRefund(uint256 id) external notPaused nonReentrant {
        uint256 amount = _takeRefund(id, msg.sender);
        _grant(challenges[id], msg.sender, amount);
        emit RefundClaimed(id, msg.sender, amount);
    }

    /// Pays eligible winners and losers straight to their wallets; ineligible entries are skipped.
    function autoDistribute(uint256 id, address[] calldata winners, address[] calldata losers)
        external
        onlyDispatcherOrAdmin
        notPaused
        nonReentrant
    {
        if (!snapshots[id].set) revert NotEligible();
        ChallengeView storage c = challenges[id];
        uint256 paidWinners;
        uint256 paidLosers;
        for (uint256 i = 0; i < winners.length; i++) {
            address user = winners[i];
            if (!winner[id][user] || winnerClaimed[id][user]) continue;
            uint256 amount = _takeWinnerClaim(id, user);
            _grantAndDeliver(c, user, amount);
            emit WinnerClaimed(id, user, amount);
            paidWinners++;
        }
        for (uint256 i = 0; i < losers.length; i++) {
            address user = losers[i];
            if (winner[id][user] || contrib[id][user] == 0 || loserClaimed[id][user]) continue;
            uint256 amount = _loserAmount(id, user);
            loserClaimed[id][user] = true;
            if (amount > 0) _grantAndDeliver(c, user, amount);
            emit LoserClaimed(id, user, amount);
            paidLosers++;
        }
        emit AutoDistributed(id, paidWinners, paidLosers);
    }

    function autoRefund(uint256 id, address[] calldata participants)
        external
        onlyDispatcherOrAdmin
        notPaused
        nonReentrant
    {
        ChallengeView storage c = challenges[id];
        if (c.status != Status.Canceled) revert ChallengeNotFinalized();
        uint256 count;
        for (uint256 i = 0; i < participants.length; i++) {
            address user = participants[i];
            if (contrib[id][user] == 0 || refundClaimed[id][user]) continue;
            uint256 amount = _takeRefund(id, user);
            _grantAndDeliver(c, user, amount);
            emit RefundClaimed(id, user, amount);
            count++;
        }
        emit AutoRefunded(id, count);
    }

    function _takeWinnerClaim(uint256 id, address user) private returns (uint256) {
        if (challenges[id].status != Status.Finalized) revert ChallengeNotFinalized();
        if (!winner[id][user] || winnerClaimed[id][user]) revert NotEligible();
        winnerClaimed[id][user] = true;
        uint256 principal = contrib[id][user];
        return principal + (principal * snapshots[id].perCommittedBonusX) / ONE;
    }

    function _takeLoserClaim(uint256 id, address user) private returns (uint256) {
        if (challenges[id].status != Status.Finalized) revert ChallengeNotFinalized();
        if (winner[id][user] || contrib[id][user] == 0 || loserClaimed[id][user]) revert NotEligible();
        loserClaimed[id][user] = true;
        return _loserAmount(id, user);
    }

    function _loserAmount(uint256 id, address user) private view returns (uint256) {
        return (contrib[id][user] * snapshots[id].perCashbackX) / ONE;
    }

    function _takeRefund(uint256 id, address user) private returns (uint256 amount) {
        if (challenges[id].status != Status.Canceled) revert ChallengeNotFinalized();
        amount = contrib[id][user];
        if (amount == 0 || refundClaimed[id][user]) revert NotEligible();
        refundClaimed[id][user] = true;
    }

    function _grant(ChallengeView storage c, address to, uint256 amount) private {
        if (c.currency == Currency.NATIVE) {
            treasury.grantETH(c.id, to, amount);
        } else {
            treasury.grantERC20(c.id, c.token, to, amount);
        }
    }

    function _grantAndDeliver(ChallengeView storage c, address to, uint256 amount) private {
        _grant(c, to, amount);
        if (c.currency == Currency.NATIVE) {
            treasury.claimETHTo(c.id, to, amount);
        } else {
            treasury.claimERC20To(c.id, c.token, to, amount);
        }
    }

    // ---------------------------------------------------------------- cancel

    function cancelChallenge(uint256 id) external notPaused {
        ChallengeView storage c = challenges[id];
        if (msg.sender != c.creator && msg.sender != admin) revert NotCreatorOrAdmin();
        if (c.canceled) revert AlreadyCanceled();
        if (c.status != Status.Active) revert NotActive();
        if (c.winnersCount != 0) revert AlreadyWinner();
        c.canceled = true;
        c.status = Status.Canceled;
        emit Canceled(id);
    }

    // ---------------------------------------------------------------- views

    function getChallenge(uint256 id) external view returns (ChallengeView memory) {
        return challenges[id];
    }

    function getSnapshot(uint256 id) external view returns (Snapshot memory) {
        return snapshots[id];
    }

    function isWinner(uint256 id, address user) external view returns (bool) {
        return winner[id][user];
    }

    function contribOf(uint256 id, address user) external view returns (uint256) {
        return contrib[id][user];
    }
}
