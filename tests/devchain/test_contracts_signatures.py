"""Event topic0s, function and error selectors of the artifacts are the real contracts' (spec §1, §2).

The tables below are copied from spec/chain.md (signature strings with their published topic0 and
selectors); `test_tables_agree_with_the_spec_document` re-reads the document when it is available.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from eth_utils import keccak

from devchain.build import ARTIFACTS_DIR
from devchain.events import INDEXED_EVENTS

SPEC_DOCUMENT = Path(__file__).resolve().parents[3] / "shared" / "spec" / "chain.md"

SPEC_EVENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "ChallengePay": (
        ("ChallengeCreated(uint256 indexed id, address indexed creator, uint8 kind, uint8 currency, address token, uint256 startTs, bytes32 externalId)",
         "0xd4ff274a9f4de44eb9cb7369f829f06bb94b3cf69d2b422b1fa81d28eef95235"),
        ("Joined(uint256 indexed id, address indexed user, uint256 amount)",
         "0xd5b030fc17ee555aeea484ceb134047c9d82176003282c85150c3b2552c6ef66"),
        ("ParticipantProofSubmitted(uint256 indexed id, address indexed participant, address indexed verifier, bool ok)",
         "0x61d4565729ef18ae3c6557c0ca7250c197790c3bfc92c7d5ec000c7a07d2a3ea"),
        ("WinnerMarked(uint256 indexed id, address indexed participant, uint256 contrib, uint256 winnersPool, uint32 winnersCount)",
         "0x124fed6cbf6373f8cf4a56a3b00d10a865480c56cca58d35cfb37ac6100b8f92"),
        ("VerificationConfigUpdated(uint256 indexed id, address verifier, uint256 proofDeadlineTs)",
         "0x20309ea0845f13ad24c6912ae9b099e736e9e79df13bc10e88e6a7a79c170754"),
        ("Finalized(uint256 indexed id, uint8 status, uint8 outcome)",
         "0x8450c98b6c7639389239ba935fb62b1edd38265d734ce1d4b6ced548f32bc45e"),
        ("Paused(uint256 indexed id, bool paused)",
         "0x4c1b01967accb6c54a1cfd9474e902600feebb01f9b039c1481f0bc793ec6a58"),
        ("Canceled(uint256 indexed id)",
         "0x829a8683c544ad289ce92d3ce06e9ebad69b18a6916e60ec766c2c217461d8e9"),
        ("FeesBooked(uint256 indexed id, uint256 protocolAmt, uint256 creatorAmt, uint256 cashback)",
         "0x8bd1ae865a0c9eee5de0f106a72005a318a9d008d87cc0eaf3c3bd5d691dd9bd"),
        ("SnapshotSet(uint256 indexed id, bool success)",
         "0xd12dad5b90def88d868dcc57ef045dbf2ecc574d91f027ca7c85fd3727a4a06b"),
        ("WinnerClaimed(uint256 indexed id, address indexed user, uint256 amount)",
         "0xb0173ebd95794ed5522fe7662b11854f3af313ced7aaa9a4050de681ea600dcb"),
        ("LoserClaimed(uint256 indexed id, address indexed user, uint256 amount)",
         "0x8dbdec192d4a8c1672d2c8b9d20ae3a4e16f5b7396d34589fccff7b1535f5294"),
        ("RefundClaimed(uint256 indexed id, address indexed user, uint256 amount)",
         "0xf3f402280ef0a7905e124aa621b65eaeb2725c343e8b36d398ed78c29daf285c"),
        ("AutoDistributed(uint256 indexed id, uint256 winnersCount, uint256 losersCount)",
         "0x732e2e57cbdd46f7b6ef114e9c3510a166142182ce0c4ec682bba90b453fabd9"),
        ("AutoRefunded(uint256 indexed id, uint256 count)",
         "0xe195327b2509d4f3385dd7490af83e7598f36b3b34861e096888d896d83ba612"),
        ("GlobalPaused(bool paused)",
         "0x39faec09bfc6835902c79c4757f9177e0cf8ab328b2bb690494e800dfe8c9c94"),
        ("AdminTransferStarted(address indexed oldAdmin, address indexed newPendingAdmin)",
         "0xe5cd1c804f1c9cc6d7009e4c0fb532f0e2d8863524c3323a6b3790c3f80bf25c"),
        ("AdminTransferAccepted(address indexed oldAdmin, address indexed newAdmin)",
         "0x0a5e51d1a708a68919d9ab9afd976c6e463eddc9bc7ee4fdbb05bf9946e85a33"),
        ("TrustedForwarderSet(address indexed forwarder)",
         "0xd91237492a9e30cd2faf361fc103998a382ff0ec2b1b07dc1cbebb76ae2f1ea2"),
        ("TokenAllowlistSet(bool enabled)",
         "0xedab75c448cb39137a363f4f09437929860c3b6ddfaab3445f06e68f6f792022"),
        ("TokenAllowed(address indexed token, bool allowed)",
         "0x9a8e30a8658b96ab3f034ce4bac6806278b4aee5880ccdd1ac35e4ed5bb31d23"),
        ("LeadTimeBoundsSet(uint256 minLeadTime, uint256 maxLeadTime)",
         "0x54a7bcb4dcd8397e4d1346ea83ef05f58714b3d8c45c7c47845383063fc2e82b"),
        ("ProofTightenOnlySet(bool enabled)",
         "0xbd28967d6f02595d7cc7a5b7a571f1e2ced0a9bb165b4f9461849e6955b02032"),
        ("CreatorAllowlistSet(bool enabled)",
         "0x95fb4e8f5ff01bb36d61252d90cc1f29b520ea9d7c5dd6c933d15e89ca50d9c4"),
        ("CreatorAllowed(address indexed creator, bool allowed)",
         "0x8080779c631fe2a2cef3d85f043bab8b7a0ac8609d12fa2d97e81b7512d21867"),
        ("FeeCapsSet(uint16 forfeitFeeMaxBps, uint16 cashbackMaxBps)",
         "0x5c4bda0735930512d684b03b8612ddeb65cfb1e4c2d2f9dff13667bf38b8b615"),
        ("FeeConfigSet(uint16 forfeitFeeBps, uint16 protocolBps, uint16 creatorBps, uint16 cashbackBps)",
         "0xca991ff30b5da7bb056f71ef5b9bf7f453ee43d9c41628c85532e8b3b7a79c5a"),
        ("DispatcherSet(address indexed addr, bool enabled)",
         "0x2e3f7d2295814d1c6955115797a3965aa006a8f9dec8a662bc2f5fa4427ba9c9"),
        ("MinStakeSet(uint256 minStake)",
         "0xa70bd512f7108f78a924d05836f49963c6d8583e3d39f5b6412eb5be70e8432a"),
    ),
    "Treasury": (
        ("ClaimedETH(uint256 indexed bucketId, address indexed to, uint256 amount)",
         "0xa3ce95edc64f70cc47461aa9f878425ba3693eb0512adc56911c3c7759b168d7"),
        ("ClaimedERC20(uint256 indexed bucketId, address indexed token, address indexed to, uint256 amount)",
         "0xcbf230a64716fe41a8264c5d2e2d4a6828b095c132ef052d929ed8e92760aea5"),
        ("BucketCreditedETH(uint256 indexed bucketId, address indexed from, uint256 amount)",
         "0xb4c2d1bdcf228131a501ef4daf49a58116320b32bef17b33b3f512adfb4d37e7"),
        ("BucketCreditedERC20(uint256 indexed bucketId, address indexed token, address indexed from, uint256 amount)",
         "0xdbc8ed52e9656b9a0d7d8e0c2efa7f17ba77f6f82bca69f1648e4a8192053cd7"),
        ("GrantETH(uint256 indexed bucketId, address indexed to, uint256 amount, address operator)",
         "0x9886f3e323e39b62237812b5b53a880af8c74ee63e4a6b7c36513a18f6061a13"),
        ("GrantERC20(uint256 indexed bucketId, address indexed token, address indexed to, uint256 amount, address operator)",
         "0x778c71f5fcbc4af900f23eb97390ef18976725045368003524ab9e6360dda70e"),
        ("ReduceETH(uint256 indexed bucketId, address indexed to, uint256 amount, address operator)",
         "0x0c8f8c601d759ff225c1dd5500e800b7b897c8b6ff49ffd11bdede17aaae419c"),
        ("ReduceERC20(uint256 indexed bucketId, address indexed token, address indexed to, uint256 amount, address operator)",
         "0x7c570503f4109b920cc89fdba11e39aa540dec68650cd945144c63371542b551"),
        ("Received(address indexed from, uint256 amount)",
         "0x88a5966d370b9919b20f3e2c13ff65706f196a4e32cc2c12bf57088f88525874"),
        ("ReceivedERC20(address indexed token, address indexed from, uint256 amount)",
         "0x60828417f1419799e99989c2523b4e489c9d34a62225df92844b238712164f69"),
        ("Swept(address indexed token, address indexed to, uint256 amount)",
         "0x7b09c29f9106defeccc9ac3b823f3aad0b470d120e5df7aed033b5c43a4bf718"),
        ("RoleGranted(bytes32 indexed role, address indexed account, address indexed sender)",
         "0x2f8788117e7eff1d82e926ec794901d17c78024a50270940304540a733656f0d"),
        ("RoleRevoked(bytes32 indexed role, address indexed account, address indexed sender)",
         "0xf6391f5c32d9c69d2a47ea670b442974b53935d1edc7fd64eb21e047a839171b"),
        ("RoleAdminChanged(bytes32 indexed role, bytes32 indexed previousAdminRole, bytes32 indexed newAdminRole)",
         "0xbd79b86ffe0ab8e8776151514217cd7cacd52c909f66475c3af44e129f0b00ff"),
    ),
    "AIVMInferenceV2": (
        ("InferenceRequestedV2(uint256 indexed requestId, address indexed requester, bytes32 indexed taskId, string model, bytes32 promptHash, bytes32 promptId, bytes32 modelDigest, bytes32 detConfigHash)",
         "0x502ff1ce80bb4978cc43919182277ec3a5a334346bb27e97ff2e5c3034e9b8bc"),
        ("InferenceCommitted(uint256 indexed requestId, address indexed worker, bytes32 commitment)",
         "0x4bf7ae7844e0683d1ce2ae97279a69a596a04a6c35c75425ea1887c659cd65c0"),
        ("InferenceRevealed(uint256 indexed requestId, address indexed worker, bytes32 responseHash, string response)",
         "0xa4534e8f6c3219423f7e421bf7cba08bc177bc86e469106622d6685ec1526c0d"),
        ("PoIAttested(bytes32 indexed taskId, address indexed validator, uint64 count, bytes32 resultHash, bytes32 transcriptHash, uint64 slot)",
         "0x4d9e07f2296ecdc1ec4f4d2f04f967dd587f4ba7305371c01613ddfa5e2a95a1"),
        ("InferenceFinalized(uint256 indexed requestId, bytes32 indexed taskId, address indexed worker, bytes32 resultHash, uint256 workerPaidWei, uint256 protocolFeeWei)",
         "0xe7d6070eea595ec5bf02a34c5db123d46d6e59d0f6c61b3fbd84a2fdf5bc4f0c"),
        ("WorkerBondDeposited(address indexed worker, uint256 amountWei)",
         "0xc656285bc9601c10f7d679d78154a208f7dc4b8bea32bb647c0f1549d93e6bcf"),
        ("WorkerBondWithdrawn(address indexed worker, uint256 amountWei)",
         "0x379874576675229ede922c1695cfb609fa0ceb111e866cd0053758ba4048a349"),
        ("WorkerSlashed(uint256 indexed requestId, address indexed worker, uint256 slashedWei, address indexed beneficiary)",
         "0xe0b3a7eb71602c2a12f8943b44c04ea526bd6ade6a35b5c6bbb4ba6f3b9db80b"),
        ("ChallengeOpened(uint256 indexed requestId, address indexed challenger, uint256 bondWei)",
         "0x661850998256930ea7f10c70742935ad94f2257f38f035afaeac6920ceb6657d"),
        ("ChallengeResolved(uint256 indexed requestId, bool upheld, address indexed winner)",
         "0x874fd3e0ba6d81d58b06aa295084dbe040084ea483a51e07e5c551498e515a3c"),
        ("OwnershipTransferred(address indexed previousOwner, address indexed newOwner)",
         "0x8be0079c531659141344cd1fd0a4f28419497f9722a3daafe3b4186f6b6457e0"),
        ("EIP712DomainChanged()",
         "0x0a6387c9ea3628b88a633bb4f3b151770f70085117a15f9bf3787cda53f13d31"),
    ),
    "ChallengeTaskRegistry": (
        ("BindingRecorded(uint256 indexed challengeId, address indexed subject, uint256 requestId, bytes32 taskId, bytes32 modelDigest, bytes32 paramsHash, bytes32 benchmarkHash, uint16 schemaVersion)",
         "0xd8e8eba2cb437fa8a61d5aae2e12006384e4c443d1c29af284aecbc6ae507745"),
        ("BindingCleared(uint256 indexed challengeId, address indexed subject)",
         "0x91df586dbb041e783da89b42e302c6f90afcab7b711c5c403f46ba5596b87b6d"),
        ("DispatcherSet(address indexed dispatcher, bool allowed)",
         "0x2e3f7d2295814d1c6955115797a3965aa006a8f9dec8a662bc2f5fa4427ba9c9"),
        ("OwnershipTransferred(address indexed previousOwner, address indexed newOwner)",
         "0x8be0079c531659141344cd1fd0a4f28419497f9722a3daafe3b4186f6b6457e0"),
    ),
    "MetadataRegistry": (
        ("MetadataSet(address indexed challengeContract, uint256 indexed challengeId, address indexed setter, string newUri)",
         "0xd1663021751fdb7c499464d870768366e28f9a2c1fbb36919445f6b01a1f65d4"),
        ("MetadataForceSet(address indexed challengeContract, uint256 indexed challengeId, address indexed setter, string previousUri, string newUri)",
         "0x20ca7af81965a2a1d2a9c989a8f54ce1ccd1e35f1e7a538c9386d45d82866aff"),
        ("MetadataCleared(address indexed challengeContract, uint256 indexed challengeId, address indexed clearer)",
         "0x601848e5b2f1be00c0aad72ce195022ac336cb3474692481b780ffb1491a8586"),
        ("OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner)",
         "0x38d16b8cac22d99fc7c124b9cd0de2d3fa1faef420bfe791d8c362d765e22700"),
        ("OwnershipTransferred(address indexed previousOwner, address indexed newOwner)",
         "0x8be0079c531659141344cd1fd0a4f28419497f9722a3daafe3b4186f6b6457e0"),
    ),
}
SPEC_SELECTORS: tuple[tuple[str, str, str], ...] = (
    ("AIVMInferenceV2", "AlreadyFinalized()", "0x475a2535"),
    ("AIVMInferenceV2", "ConflictingPoIResult()", "0xe8b3cc4f"),
    ("AIVMInferenceV2", "DeadlineNotReached()", "0x66ec4ee6"),
    ("AIVMInferenceV2", "DeadlinePassed()", "0x70f65caa"),
    ("AIVMInferenceV2", "ECDSAInvalidSignature()", "0xf645eedf"),
    ("AIVMInferenceV2", "ECDSAInvalidSignatureLength(uint256)", "0xfce698f7"),
    ("AIVMInferenceV2", "ECDSAInvalidSignatureS(bytes32)", "0xd78bce0c"),
    ("AIVMInferenceV2", "InsufficientBond()", "0xe92c469f"),
    ("AIVMInferenceV2", "InsufficientFee()", "0x025dbdd4"),
    ("AIVMInferenceV2", "InvalidParams()", "0xa86b6512"),
    ("AIVMInferenceV2", "NotActiveValidator()", "0x98a8cbb0"),
    ("AIVMInferenceV2", "NotRequester()", "0xe39da59e"),
    ("AIVMInferenceV2", "NotWorker()", "0xfb55adaf"),
    ("AIVMInferenceV2", "OwnableUnauthorizedAccount(address)", "0x118cdaa7"),
    ("AIVMInferenceV2", "TooManyPending()", "0x1598acd8"),
    ("AIVMInferenceV2", "WrongStatus()", "0x8e78f0cb"),
    ("AIVMInferenceV2", "cancelExpired(uint256)", "0x5a5aae1e"),
    ("AIVMInferenceV2", "commitInference(uint256,bytes32)", "0x71396b06"),
    ("AIVMInferenceV2", "depositWorkerBond()", "0x5ecfb71c"),
    ("AIVMInferenceV2", "nextRequestId()", "0x6a84a985"),
    ("AIVMInferenceV2", "poiAttestationCount(bytes32)", "0xbc7c6a6a"),
    ("AIVMInferenceV2", "poiAttested(bytes32,address)", "0xa314c21e"),
    ("AIVMInferenceV2", "poiQuorum()", "0x8fce4f91"),
    ("AIVMInferenceV2", "poiResultHashByTask(bytes32)", "0x3c72f2f5"),
    ("AIVMInferenceV2", "poiSlotByTask(bytes32)", "0xe328cfa4"),
    ("AIVMInferenceV2", "poiTranscriptHashByTask(bytes32)", "0x3e157b69"),
    ("AIVMInferenceV2", "reclaimAfterFinalizeTimeout(uint256)", "0xa893e666"),
    ("AIVMInferenceV2", "requestIdByTaskId(bytes32)", "0x611aa3f8"),
    ("AIVMInferenceV2", "requestInferenceV2(string,bytes32,bytes32,bytes32,bytes32)", "0xbf55e680"),
    ("AIVMInferenceV2", "requests(uint256)", "0x81d12c58"),
    ("AIVMInferenceV2", "revealInference(uint256,bytes32,string)", "0xa73885cd"),
    ("AIVMInferenceV2", "setPoIQuorum(uint64)", "0xc7ebcbd1"),
    ("AIVMInferenceV2", "setProtocolFee(uint256)", "0x787dce3d"),
    ("AIVMInferenceV2", "setSpamControls(uint256,uint256)", "0x379f95c7"),
    ("AIVMInferenceV2", "setTimeouts(uint256,uint256,uint256)", "0x06a39f6b"),
    ("AIVMInferenceV2", "setWorkerBondParams(uint256)", "0x104e0d4e"),
    ("AIVMInferenceV2", "submitPoIAttestation(bytes32,bytes32,bytes32,uint64,bytes)", "0xdddcf7d1"),
    ("AIVMInferenceV2", "taskIdFor(uint256)", "0x008675b5"),
    ("AIVMInferenceV2", "timeoutReveal(uint256)", "0x5821a803"),
    ("AIVMInferenceV2", "validatorRegistry()", "0xf376ebbb"),
    ("AIVMInferenceV2", "withdrawWorkerBond(uint256)", "0x69a349c7"),
    ("ChallengePay", "AlreadyCanceled()", "0x4b06e2b6"),
    ("ChallengePay", "AlreadyFinalized()", "0x475a2535"),
    ("ChallengePay", "AlreadyWinner()", "0xa9b9b41e"),
    ("ChallengePay", "AmountZero()", "0xcbca5aa2"),
    ("ChallengePay", "BeforeDeadline()", "0x1bf55193"),
    ("ChallengePay", "ChallengeNotFinalized()", "0x2c35d3be"),
    ("ChallengePay", "ChallengePaused()", "0x01b84f6b"),
    ("ChallengePay", "DeadlineRequired()", "0xc01cfcfc"),
    ("ChallengePay", "ExternalIdAlreadyUsed()", "0xfe0414d1"),
    ("ChallengePay", "GlobalPausedError()", "0xf10a0ea5"),
    ("ChallengePay", "InvalidBounds()", "0xa8834357"),
    ("ChallengePay", "JoinClosesAfterStart()", "0xee4bddce"),
    ("ChallengePay", "JoinWindowClosed()", "0xd673d309"),
    ("ChallengePay", "LeadTimeOutOfBounds()", "0x4df5ab38"),
    ("ChallengePay", "MaxParticipantsReached()", "0x6c8c8d21"),
    ("ChallengePay", "NotActive()", "0x80cb55e2"),
    ("ChallengePay", "NotAdmin()", "0x7bfa4b9f"),
    ("ChallengePay", "NotCreatorOrAdmin()", "0x440e7333"),
    ("ChallengePay", "NotEligible()", "0xf8eb54de"),
    ("ChallengePay", "ProofDeadlineBeforeEnd()", "0xf8f9e099"),
    ("ChallengePay", "ProofNotOpen()", "0x09442c5b"),
    ("ChallengePay", "ProofWindowClosed()", "0xee19d855"),
    ("ChallengePay", "ReentrancyGuardReentrantCall()", "0x3ee5aeb5"),
    ("ChallengePay", "StartTooSoon()", "0xd9a1940e"),
    ("ChallengePay", "TokenNotAllowed()", "0xa29c4986"),
    ("ChallengePay", "WrongMsgValue()", "0x77f0f862"),
    ("ChallengePay", "ZeroAddress()", "0xd92e233d"),
    ("ChallengePay", "autoDistribute(uint256,address[],address[])", "0x5d6dc677"),
    ("ChallengePay", "autoRefund(uint256,address[])", "0x579b2fdf"),
    ("ChallengePay", "cancelChallenge(uint256)", "0xa41483e3"),
    ("ChallengePay", "claimLoser(uint256)", "0x06b28141"),
    ("ChallengePay", "claimRefund(uint256)", "0x5b7baf64"),
    ("ChallengePay", "claimWinner(uint256)", "0xc3887ad7"),
    ("ChallengePay", "contribOf(uint256,address)", "0xdf3b1a51"),
    ("ChallengePay", "createChallenge((uint8,uint8,address,uint256,uint256,uint256,uint256,uint256,address,uint256,bytes32))", "0xbe96ecaa"),
    ("ChallengePay", "dispatchers(address)", "0xe4fd268d"),
    ("ChallengePay", "finalize(uint256)", "0x05261aea"),
    ("ChallengePay", "getChallenge(uint256)", "0x1bdd4b74"),
    ("ChallengePay", "getSnapshot(uint256)", "0x76f10ad0"),
    ("ChallengePay", "isWinner(uint256,address)", "0xbdd415af"),
    ("ChallengePay", "joinChallengeERC20(uint256,uint256)", "0x35581fe2"),
    ("ChallengePay", "joinChallengeNative(uint256)", "0x581fa02e"),
    ("ChallengePay", "pauseAll(bool)", "0x7cac41a6"),
    ("ChallengePay", "pauseChallenge(uint256,bool)", "0xd74879de"),
    ("ChallengePay", "setDispatcher(address,bool)", "0x876244b6"),
    ("ChallengePay", "setVerificationConfig(uint256,address,uint256)", "0x22989747"),
    ("ChallengePay", "submitMyProof(uint256,bytes)", "0xf42efdb8"),
    ("ChallengePay", "submitProofFor(uint256,address,bytes)", "0x6e484a0d"),
    ("ChallengePay", "submitProofForBatch(uint256,address[],bytes[])", "0x428509ab"),
    ("ChallengePayAivmPoiVerifier", "OwnableUnauthorizedAccount(address)", "0x118cdaa7"),
    ("ChallengePayAivmPoiVerifier", "RESULT_SCHEMA_V1()", "0x0e59835b"),
    ("ChallengePayAivmPoiVerifier", "aivm()", "0x7c54e05e"),
    ("ChallengePayAivmPoiVerifier", "previewCanonicalResultString(bytes)", "0x9499c0c6"),
    ("ChallengePayAivmPoiVerifier", "previewResponseHash(bytes)", "0x10653ec9"),
    ("ChallengePayAivmPoiVerifier", "taskRegistry()", "0x9e498f16"),
    ("ChallengePayAivmPoiVerifier", "verify(uint256,address,bytes)", "0xb7b9f7d5"),
    ("ChallengeTaskRegistry", "InvalidModelDigest()", "0x89eb2d60"),
    ("ChallengeTaskRegistry", "InvalidRequestId()", "0xba0514c0"),
    ("ChallengeTaskRegistry", "InvalidSchemaVersion()", "0x05310e24"),
    ("ChallengeTaskRegistry", "InvalidSubject()", "0xd5be818f"),
    ("ChallengeTaskRegistry", "InvalidTask()", "0x0531bbb1"),
    ("ChallengeTaskRegistry", "NotAuthorized()", "0xea8e4eb5"),
    ("ChallengeTaskRegistry", "OwnableUnauthorizedAccount(address)", "0x118cdaa7"),
    ("ChallengeTaskRegistry", "bindingExists(uint256,address)", "0x4ad12b6c"),
    ("ChallengeTaskRegistry", "clearBinding(uint256,address)", "0x02dcf883"),
    ("ChallengeTaskRegistry", "dispatchers(address)", "0xe4fd268d"),
    ("ChallengeTaskRegistry", "getBinding(uint256,address)", "0xec42ce64"),
    ("ChallengeTaskRegistry", "recordBinding(uint256,address,uint256,bytes32,bytes32,bytes32,bytes32,uint16)", "0xa05e4569"),
    ("ChallengeTaskRegistry", "setDispatcher(address,bool)", "0x876244b6"),
    ("LCAIValidatorRegistry", "InvalidParams()", "0xa86b6512"),
    ("LCAIValidatorRegistry", "validators(address)", "0xfa52c7d8"),
    ("MetadataRegistry", "AlreadySet()", "0xa741a045"),
    ("MetadataRegistry", "EmptyUri()", "0xd64becfd"),
    ("MetadataRegistry", "LenMismatch()", "0x8b140a81"),
    ("MetadataRegistry", "NotOwner()", "0x30cd7471"),
    ("MetadataRegistry", "getMany(address[],uint256[])", "0x5390448a"),
    ("MetadataRegistry", "hasUri(address,uint256)", "0x5db8fcef"),
    ("MetadataRegistry", "ownerClear(address,uint256)", "0x05e42715"),
    ("MetadataRegistry", "ownerForceSet(address,uint256,string)", "0x60b80b62"),
    ("MetadataRegistry", "ownerSet(address,uint256,string)", "0x8b3b7548"),
    ("MetadataRegistry", "ownerSetBatch(address[],uint256[],string[])", "0x141d1a31"),
    ("MetadataRegistry", "uri(address,uint256)", "0x28205a93"),
    ("Treasury", "AllowanceTooLow()", "0xbac9b5e8"),
    ("Treasury", "AmountZero()", "0xcbca5aa2"),
    ("Treasury", "InsufficientBucketBalance()", "0x6d3d9377"),
    ("Treasury", "ReentrancyGuardReentrantCall()", "0x3ee5aeb5"),
    ("Treasury", "ZeroAddress()", "0xd92e233d"),
    ("Treasury", "claimETH(uint256,uint256)", "0x298a7b2e"),
)


def _artifact_abi(contract: str) -> list[dict]:
    return json.loads((ARTIFACTS_DIR / f"{contract}.json").read_text())["abi"]


def _param_type(param: dict) -> str:
    if param["type"].startswith("tuple"):
        return "(" + ",".join(_param_type(c) for c in param["components"]) + ")" + param["type"][5:]
    return param["type"]


def _parse_signature(signature: str) -> tuple[str, list[tuple[str, bool]]]:
    """`Joined(uint256 indexed id, ...)` -> ("Joined", [("uint256", True), ...])."""
    name, params = re.fullmatch(r"(\w+)\((.*)\)", signature).groups()
    parsed = []
    for param in filter(None, (p.strip() for p in params.split(","))):
        words = param.split()
        parsed.append((words[0], "indexed" in words[1:]))
    return name, parsed


def _canonical(name: str, params: list[tuple[str, bool]]) -> str:
    return f"{name}({','.join(t for t, _ in params)})"


def test_spec_topic0s_are_the_keccak_of_their_signatures():
    for rows in SPEC_EVENTS.values():
        for signature, topic0 in rows:
            assert "0x" + keccak(text=_canonical(*_parse_signature(signature))).hex() == topic0, signature


@pytest.mark.parametrize("contract", sorted(SPEC_EVENTS))
def test_artifact_events_have_the_spec_signature_indexing_and_topic0(contract: str):
    spec = {}
    for signature, topic0 in SPEC_EVENTS[contract]:
        name, params = _parse_signature(signature)
        spec[name] = (params, topic0)
    events = [e for e in _artifact_abi(contract) if e["type"] == "event"]
    assert events, f"{contract} declares no events"
    for event in events:
        assert event["name"] in spec, f"{contract}.{event['name']} is not an event of the real contract"
        params, topic0 = spec[event["name"]]
        mine = [(_param_type(i), bool(i["indexed"])) for i in event["inputs"]]
        assert mine == params, f"{contract}.{event['name']}: types/indexed differ from the spec"
        assert "0x" + keccak(text=_canonical(event["name"], mine)).hex() == topic0


def test_every_event_the_indexer_consumes_is_declared_with_the_spec_topic0():
    for contract, names in INDEXED_EVENTS.items():
        declared = {e["name"]: e for e in _artifact_abi(contract) if e["type"] == "event"}
        spec = {_parse_signature(s)[0]: t for s, t in SPEC_EVENTS[contract]}
        for name in names:
            assert name in declared, f"{contract} lacks {name}"
            canonical = f"{name}({','.join(_param_type(i) for i in declared[name]['inputs'])})"
            assert "0x" + keccak(text=canonical).hex() == spec[name]


def test_dispatcher_set_shares_its_topic0_between_two_contracts():
    pay = {_parse_signature(s)[0]: t for s, t in SPEC_EVENTS["ChallengePay"]}
    registry = {_parse_signature(s)[0]: t for s, t in SPEC_EVENTS["ChallengeTaskRegistry"]}
    assert pay["DispatcherSet"] == registry["DispatcherSet"]


def test_function_and_error_selectors_match_the_spec():
    for contract, signature, selector in SPEC_SELECTORS:
        entries = [e for e in _artifact_abi(contract) if e["type"] in ("function", "error")]
        by_signature = {f"{e['name']}({','.join(_param_type(i) for i in e['inputs'])})": e for e in entries}
        assert signature in by_signature, f"{contract} lacks {signature}"
        assert "0x" + keccak(text=signature)[:4].hex() == selector


def test_the_chain_indexer_catalogue_accepts_the_deployed_abis():
    from indexers.chain.catalogue import abi_events, spec_events

    from_abis = abi_events()
    for role, events in spec_events().items():
        assert [e.topic0 for e in from_abis[role]] == [e.topic0 for e in events]


def test_tables_agree_with_the_spec_document():
    if not SPEC_DOCUMENT.is_file():
        pytest.skip(f"{SPEC_DOCUMENT} is not available")
    text = SPEC_DOCUMENT.read_text()
    section = text[text.index("### 1.1"):text.index("### 1.7")]
    parsed: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in section.splitlines():
        heading = re.match(r"### 1\.\d (\w+)", line)
        if heading:
            current = heading.group(1)
            continue
        row = re.match(r"\| `([^`]+)`(?: \([^)]*\))? \| `(0x[0-9a-f]{64})`", line)
        if row:
            parsed.setdefault(current, []).append((row.group(1), row.group(2)))
    assert {k: tuple(v) for k, v in parsed.items()} == SPEC_EVENTS
    for _contract, _signature, selector in SPEC_SELECTORS:
        assert f"`{selector}`" in text or f"{selector}" in text


# Every custom error the spec lists per contract (spec §2), with its selector.
SPEC_ERRORS: dict[str, dict[str, str]] = {
    "ChallengePay": {
        "AlreadyCanceled()": "0x4b06e2b6", "AlreadyFinalized()": "0x475a2535", "AlreadyWinner()": "0xa9b9b41e",
        "AmountZero()": "0xcbca5aa2", "BeforeDeadline()": "0x1bf55193", "ChallengeNotFinalized()": "0x2c35d3be",
        "ChallengePaused()": "0x01b84f6b", "DeadlineRequired()": "0xc01cfcfc", "ExternalIdAlreadyUsed()": "0xfe0414d1",
        "GlobalPausedError()": "0xf10a0ea5", "InvalidBounds()": "0xa8834357", "JoinClosesAfterStart()": "0xee4bddce",
        "JoinWindowClosed()": "0xd673d309", "LeadTimeOutOfBounds()": "0x4df5ab38",
        "MaxParticipantsReached()": "0x6c8c8d21", "NotActive()": "0x80cb55e2", "NotAdmin()": "0x7bfa4b9f",
        "NotCreatorOrAdmin()": "0x440e7333", "NotEligible()": "0xf8eb54de", "NotPendingAdmin()": "0x058d9a1b",
        "ProofDeadlineBeforeEnd()": "0xf8f9e099", "ProofNotOpen()": "0x09442c5b", "ProofWindowClosed()": "0xee19d855",
        "ReentrancyGuardReentrantCall()": "0x3ee5aeb5", "StartTooSoon()": "0xd9a1940e",
        "TightenOnlyViolation()": "0x952d2dca", "TokenNotAllowed()": "0xa29c4986", "WrongMsgValue()": "0x77f0f862",
        "ZeroAddress()": "0xd92e233d",
    },
    "AIVMInferenceV2": {
        "InvalidParams()": "0xa86b6512", "InsufficientFee()": "0x025dbdd4", "TooManyPending()": "0x1598acd8",
        "WrongStatus()": "0x8e78f0cb", "DeadlinePassed()": "0x70f65caa", "InsufficientBond()": "0xe92c469f",
        "NotWorker()": "0xfb55adaf", "Disputed()": "0x62e6201d", "NotActiveValidator()": "0x98a8cbb0",
        "ConflictingPoIResult()": "0xe8b3cc4f", "ECDSAInvalidSignature()": "0xf645eedf",
        "ECDSAInvalidSignatureLength(uint256)": "0xfce698f7", "ECDSAInvalidSignatureS(bytes32)": "0xd78bce0c",
        "NotRequester()": "0xe39da59e", "DeadlineNotReached()": "0x66ec4ee6", "NotResolver()": "0xba2a9fc2",
        "AlreadyFinalized()": "0x475a2535", "InvalidSignature()": "0x8baa579f",
        "OwnableUnauthorizedAccount(address)": "0x118cdaa7", "ReentrancyGuardReentrantCall()": "0x3ee5aeb5",
    },
    "ChallengeTaskRegistry": {
        "NotAuthorized()": "0xea8e4eb5", "InvalidSubject()": "0xd5be818f", "InvalidRequestId()": "0xba0514c0",
        "InvalidTask()": "0x0531bbb1", "InvalidModelDigest()": "0x89eb2d60", "InvalidSchemaVersion()": "0x05310e24",
    },
    "MetadataRegistry": {
        "NotOwner()": "0x30cd7471", "EmptyUri()": "0xd64becfd", "AlreadySet()": "0xa741a045",
        "LenMismatch()": "0x8b140a81",
    },
    "Treasury": {"InsufficientBucketBalance()": "0x6d3d9377", "AllowanceTooLow()": "0xbac9b5e8"},
}


@pytest.mark.parametrize("contract", sorted(SPEC_ERRORS))
def test_every_spec_error_is_declared_with_its_selector(contract: str):
    declared = {f"{e['name']}({','.join(_param_type(i) for i in e['inputs'])})"
                for e in _artifact_abi(contract) if e["type"] == "error"}
    for signature, selector in SPEC_ERRORS[contract].items():
        assert signature in declared, f"{contract} lacks {signature}"
        assert "0x" + keccak(text=signature)[:4].hex() == selector, signature


# Functions an operator, a script or a stage calls whose signature the spec gives without a selector, or
# which the spec only names: pinned here with their selector (keccak of the canonical signature, written
# out so a typo in either shows) and where the real signature comes from.
REAL_FUNCTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("ChallengePay", "setFeeConfig((uint16,uint16,uint16,uint16))", "0x3548f279",
     "one FeeConfig struct; members as FeeConfigSet and the per-challenge fee snapshot (spec §1.1, §3.1)"),
    ("Treasury", "ethAllowanceOf(uint256,address)", "0x3de6147a", "Treasury.sol: allowance per (bucket, recipient)"),
    ("Treasury", "bucketEthBalance(uint256)", "0xe68b3b6e", "Treasury.sol: unallocated ETH per bucket"),
    ("Treasury", "allowanceOf(address,uint256,address)", "0x1af7f414", "Treasury.sol: (token, bucket, recipient)"),
    ("Treasury", "bucketErc20Balance(address,uint256)", "0x4153cc5b", "Treasury.sol: (token, bucket)"),
    ("AIVMInferenceV2", "setTreasury(address)", "0xf0f44260",
     "AIVMInferenceV2.sol: the fee treasury (spec §4.2) is the deployer until the owner sets it"),
    ("AIVMInferenceV2", "treasury()", "0x61d027b3", "AIVMInferenceV2.sol"),
    ("AIVMInferenceV2", "workerBondLocked(address)", "0x7f262c03", "AIVMInferenceV2.sol"),
)

# Names this project's contracts used before they matched the real ones: none may come back.
FORMER_NAMES: dict[str, tuple[str, ...]] = {
    "Treasury": ("allowanceETH", "bucketBalanceETH", "allowanceERC20", "bucketBalanceERC20"),
    "AIVMInferenceV2": ("lockedBond",),
}

# Constructor parameter types of the real contracts (what a deploy script passes): ChallengePay(treasury,
# protocol) (spec §0: the protocol recipient is a constructor argument), Treasury(admin, initialOperator),
# AIVMInferenceV2(validatorRegistry), ChallengeTaskRegistry(initialOwner),
# ChallengePayAivmPoiVerifier(initialOwner, aivm, taskRegistry), MetadataRegistry(initialOwner); the
# validator registry takes none. Which address goes where is checked on a deployment
# (test_contracts_deploy.py).
REAL_CONSTRUCTORS: dict[str, tuple[str, ...]] = {
    "ChallengePay": ("address", "address"),
    "Treasury": ("address", "address"),
    "AIVMInferenceV2": ("address",),
    "ChallengeTaskRegistry": ("address",),
    "ChallengePayAivmPoiVerifier": ("address", "address", "address"),
    "MetadataRegistry": ("address",),
    "LCAIValidatorRegistry": (),
}


def _functions_named(contract: str, name: str) -> list[str]:
    return [f"{e['name']}({','.join(_param_type(i) for i in e['inputs'])})"
            for e in _artifact_abi(contract) if e["type"] == "function" and e["name"] == name]


@pytest.mark.parametrize(("contract", "signature", "selector", "source"), REAL_FUNCTIONS,
                         ids=[f"{c}.{s}" for c, s, _, _ in REAL_FUNCTIONS])
def test_functions_callers_use_have_the_real_signature_and_no_other(contract: str, signature: str, selector: str,
                                                                    source: str):
    name = signature.split("(")[0]
    assert _functions_named(contract, name) == [signature], f"{contract}.{name} must be {signature} ({source})"
    assert "0x" + keccak(text=signature)[:4].hex() == selector


def test_spec_functions_have_no_second_overload():
    """A pinned spec signature next to a leftover variant of it (e.g. the former getMany(address,uint256[]))
    would still let callers use the wrong one."""
    for contract, signature, _selector in SPEC_SELECTORS:
        name = signature.split("(")[0]
        if name[0].islower():
            assert _functions_named(contract, name) == [signature], f"{contract}.{name}"


@pytest.mark.parametrize("contract", sorted(FORMER_NAMES))
def test_former_names_are_gone(contract: str):
    declared = {e.get("name") for e in _artifact_abi(contract)}
    assert not declared & set(FORMER_NAMES[contract])


@pytest.mark.parametrize("contract", sorted(REAL_CONSTRUCTORS))
def test_constructor_takes_the_real_parameters(contract: str):
    constructors = [e for e in _artifact_abi(contract) if e["type"] == "constructor"]
    types = tuple(_param_type(i) for i in constructors[0]["inputs"]) if constructors else ()
    assert types == REAL_CONSTRUCTORS[contract]
