"""Pure AIVM and proof helpers (no I/O): task ids, commitments, the canonical response, EIP-712 PoI
attestation digests and signatures, prompt ids, and the 416-byte AivmPoiProofV1 encoding (spec §4)."""

from __future__ import annotations

from dataclasses import astuple, dataclass

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_canonical_address

ZERO32 = b"\x00" * 32
DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
POI_TYPEHASH = keccak(text="PoIAttestation(bytes32 taskId,bytes32 resultHash,bytes32 transcriptHash,uint64 slot)")
DOMAIN_NAME = "LCAI-PoI-Attestation"
DOMAIN_VERSION = "1"
RESULT_SCHEMA_V1 = 1

# AIVMInferenceV2.RequestStatus
STATUS_NONE, STATUS_REQUESTED, STATUS_COMMITTED, STATUS_REVEALED = 0, 1, 2, 3
STATUS_FINALIZED, STATUS_CANCELLED, STATUS_TIMED_OUT, STATUS_DISPUTED = 4, 5, 6, 7

PROOF_TYPES: tuple[str, ...] = (
    "uint16", "uint256", "bytes32", "uint256", "address", "bool", "uint256", "bytes32", "bytes32", "bytes32",
    "uint64", "bytes32", "bytes32",
)


def task_id_for(chain_id: int, aivm_address: str, request_id: int) -> bytes:
    """keccak256(abi.encodePacked(uint256 chainid, address aivm, uint256 requestId))."""
    return keccak(chain_id.to_bytes(32, "big") + to_canonical_address(aivm_address) + request_id.to_bytes(32, "big"))


def canonical_response(challenge_id: int) -> str:
    """The only response the PoI verifier accepts for a challenge."""
    return f'{{"challengeId":"{challenge_id}","verified":true}}'


def response_hash(response: str) -> bytes:
    return keccak(response.encode())


def commitment(request_id: int, worker: str, secret: bytes, result_hash: bytes) -> bytes:
    """keccak256(abi.encodePacked(uint256 requestId, address worker, bytes32 secret, bytes32 responseHash))."""
    return keccak(request_id.to_bytes(32, "big") + to_canonical_address(worker) + secret + result_hash)


def prompt_id(challenge_id: int, subject: str) -> bytes:
    """keccak256(abi.encodePacked(uint256 challengeId, address subject))."""
    return keccak(challenge_id.to_bytes(32, "big") + to_canonical_address(subject))


def domain_separator(chain_id: int, aivm_address: str) -> bytes:
    return keccak(abi_encode(
        ["bytes32", "bytes32", "bytes32", "uint256", "address"],
        [DOMAIN_TYPEHASH, keccak(text=DOMAIN_NAME), keccak(text=DOMAIN_VERSION), chain_id, aivm_address],
    ))


def attestation_digest(chain_id: int, aivm_address: str, task_id: bytes, result_hash: bytes,
                       transcript_hash: bytes = ZERO32, slot: int = 0) -> bytes:
    struct_hash = keccak(abi_encode(
        ["bytes32", "bytes32", "bytes32", "bytes32", "uint64"],
        [POI_TYPEHASH, task_id, result_hash, transcript_hash, slot],
    ))
    return keccak(b"\x19\x01" + domain_separator(chain_id, aivm_address) + struct_hash)


def sign_attestation(validator: LocalAccount, chain_id: int, aivm_address: str, task_id: bytes,
                     result_hash: bytes, transcript_hash: bytes = ZERO32, slot: int = 0) -> bytes:
    """65-byte r‖s‖v signature of the PoIAttestation typed data."""
    digest = attestation_digest(chain_id, aivm_address, task_id, result_hash, transcript_hash, slot)
    signed = validator.unsafe_sign_hash(digest)
    return signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])


@dataclass(frozen=True)
class AivmPoiProofV1:
    schema_version: int
    request_id: int
    task_id: bytes
    challenge_id: int
    subject: str
    passed: bool
    score: int
    evidence_hash: bytes
    benchmark_hash: bytes
    metric_hash: bytes
    evaluated_at: int
    model_digest: bytes
    params_hash: bytes

    def encode(self) -> bytes:
        """abi.encode of the all-static struct: 13 words, 416 bytes, no leading offset."""
        return abi_encode(list(PROOF_TYPES), list(astuple(self)))
