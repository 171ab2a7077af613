"""What the AIVM request and the task bindings of a job are (spec/chain.md §4.1, §4.3); pure.

The prompt payload follows §4.1's key order (`schema`, `challengeId`, `subject`, `modelId`,
`modelDigest`, `paramsHash`, `benchmarkHash`) and, since one request proves every participant the job
names, ends with the sorted `participants` known when it is sent instead of one subject's verdict (no
wall-clock time in it). A retry or a restart recognises the job's request on chain by what cannot
change, the prompt id (challenge, subject), model, model digest and params hash, not by the prompt
hash. The verifier checks none of the prompt fields.

Recovery (§4.1, §4.2): a request can still reach InferenceFinalized only while it makes each step
before that step's deadline (commit, reveal, finalize); `request_expiry` says when it no longer can.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak

from chain import aivm
from domain.challenge_state import ChallengeState

PROMPT_SCHEMA = "lc-aivm-eval-v1"
BINDING_SCHEMA_VERSION = aivm.RESULT_SCHEMA_V1
_BYTES32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class InvalidJob(ValueError):
    """The job's challenge lacks what a request needs; the message names what is missing."""


@dataclass(frozen=True)
class RequestSpec:
    """Arguments of requestInferenceV2 plus the binding's benchmark hash (hashes as 32 raw bytes)."""

    challenge_id: int
    subject: str  # lower-cased 0x-hex
    model: str
    prompt_hash: bytes
    prompt_id: bytes
    model_digest: bytes
    det_config_hash: bytes  # the challenge's params hash (§4.1)
    benchmark_hash: bytes


@dataclass(frozen=True)
class RequestRef:
    """An AIVM request on chain: what bindings and proofs point at."""

    request_id: int
    task_id: str  # lower-cased 0x-hex


@dataclass(frozen=True)
class Binding:
    """ChallengeTaskRegistry.getBinding(...) as read from the chain."""

    request_id: int
    task_id: bytes
    model_digest: bytes
    params_hash: bytes
    benchmark_hash: bytes
    schema_version: int
    exists: bool


def _bytes32(value: Any, name: str, *, allow_zero: bool = True) -> bytes:
    if not isinstance(value, str) or not _BYTES32.match(value.strip()):
        raise InvalidJob(f"{name} is not a bytes32 hex string: {value!r}")
    raw = bytes.fromhex(value.strip()[2:])
    if not allow_zero and raw == aivm.ZERO32:
        raise InvalidJob(f"{name} is zero")
    return raw


def _proof_field(challenge: ChallengeState, name: str) -> Any:
    proof = challenge.proof if isinstance(challenge.proof, Mapping) else {}
    return proof.get(name)


def prompt_payload(challenge_id: int, subject: str, model: str, model_digest: bytes, params_hash: bytes,
                   benchmark_hash: bytes, participants: Iterable[str]) -> str:
    """The compact JSON prompt of a job's request (its keccak is the request's promptHash)."""
    document = {
        "schema": PROMPT_SCHEMA,
        "challengeId": str(challenge_id),
        "subject": subject.lower(),
        "modelId": model,
        "modelDigest": "0x" + model_digest.hex(),
        "paramsHash": "0x" + params_hash.hex(),
        "benchmarkHash": "0x" + benchmark_hash.hex(),
        "participants": sorted({p.lower() for p in participants}),
    }
    return json.dumps(document, separators=(",", ":"))


def request_spec(challenge: ChallengeState, participants: Iterable[str]) -> RequestSpec:
    """The request of a job for `challenge` naming `participants` (those queued with the job)."""
    if not challenge.registered:
        raise InvalidJob(f"challenge {challenge.challenge_id} is not registered")
    subject = challenge.subject or challenge.creator
    if not subject or not _ADDRESS.match(subject):
        raise InvalidJob(f"challenge {challenge.challenge_id} has no subject address")
    model = _proof_field(challenge, "modelId") or challenge.model_id
    if not isinstance(model, str) or not model.strip():
        raise InvalidJob(f"challenge {challenge.challenge_id} has no model id")
    model_digest = _bytes32(challenge.model_hash, "model_hash", allow_zero=False)
    params_hash = _bytes32(_proof_field(challenge, "paramsHash"), "proof.paramsHash", allow_zero=False)
    benchmark_hash = _bytes32(_proof_field(challenge, "benchmarkHash"), "proof.benchmarkHash")
    named = list(participants)
    prompt = prompt_payload(challenge.challenge_id, subject, model.strip(), model_digest, params_hash,
                            benchmark_hash, named)
    return RequestSpec(
        challenge_id=challenge.challenge_id, subject=subject.lower(), model=model.strip(),
        prompt_hash=keccak(text=prompt), prompt_id=aivm.prompt_id(challenge.challenge_id, subject),
        model_digest=model_digest, det_config_hash=params_hash, benchmark_hash=benchmark_hash,
    )


def matches_request(spec: RequestSpec, model: str, prompt_id: bytes, model_digest: bytes,
                    det_config_hash: bytes) -> bool:
    """Whether an InferenceRequestedV2 of our wallet is this job's request (the prompt hash may differ
    when participants were named differently; the prompt id, model and hashes may not)."""
    return (model == spec.model and prompt_id == spec.prompt_id and model_digest == spec.model_digest
            and det_config_hash == spec.det_config_hash)


def binding_is_current(binding: Binding, spec: RequestSpec, request: RequestRef) -> bool:
    """Whether an on-chain binding already points at this request with this job's hashes."""
    return (binding.exists and binding.request_id == request.request_id
            and "0x" + binding.task_id.hex() == request.task_id.lower()
            and binding.model_digest == spec.model_digest and binding.params_hash == spec.det_config_hash
            and binding.benchmark_hash == spec.benchmark_hash and binding.schema_version == BINDING_SCHEMA_VERSION)


def retry_delay(attempt: int, base_seconds: float, max_seconds: float) -> float:
    """Exponential backoff after failed attempt `attempt` (1-based): base, 2·base, 4·base, ... capped."""
    if attempt < 1 or base_seconds <= 0:
        return 0.0
    return min(max_seconds, base_seconds * 2 ** min(attempt - 1, 30))


_STATUS_NAMES = {aivm.STATUS_NONE: "unknown", aivm.STATUS_REQUESTED: "Requested", aivm.STATUS_COMMITTED: "Committed",
                 aivm.STATUS_REVEALED: "Revealed", aivm.STATUS_FINALIZED: "Finalized",
                 aivm.STATUS_CANCELLED: "Cancelled", aivm.STATUS_TIMED_OUT: "TimedOut",
                 aivm.STATUS_DISPUTED: "Disputed"}
# the deadline a request in each status must make its next step by
_NEXT_DEADLINE = {aivm.STATUS_REQUESTED: "commit", aivm.STATUS_COMMITTED: "reveal", aivm.STATUS_REVEALED: "finalize",
                  aivm.STATUS_DISPUTED: "finalize"}


@dataclass(frozen=True)
class RequestState:
    """AIVMInferenceV2.requests(id), the parts recovery reads."""

    status: int
    commit_deadline: int
    reveal_deadline: int
    finalize_deadline: int

    @property
    def status_name(self) -> str:
        return _STATUS_NAMES.get(self.status, str(self.status))

    def next_deadline(self) -> tuple[str, int] | None:
        """(name, Unix s) of the deadline the request must make its next step by; None once it finished."""
        name = _NEXT_DEADLINE.get(self.status)
        if name is None:
            return None
        return name, {"commit": self.commit_deadline, "reveal": self.reveal_deadline,
                      "finalize": self.finalize_deadline}[name]


def request_expiry(state: RequestState, chain_time: int) -> str | None:
    """Why the request can no longer reach InferenceFinalized at `chain_time` (None: it still can, or
    it did). Cancelled and TimedOut are final; a request still Requested after its commit deadline,
    Committed after its reveal deadline, Revealed (or disputed) after its finalize deadline can make
    no further step (AIVMInferenceV2 refuses each after its deadline)."""
    if state.status in (aivm.STATUS_CANCELLED, aivm.STATUS_TIMED_OUT):
        return f"AIVM request {state.status_name.lower()}"
    deadline = state.next_deadline()
    if deadline is None or chain_time <= deadline[1]:
        return None
    return (f"AIVM request still {state.status_name} after its {deadline[0]} deadline "
            f"({deadline[1]}; chain time {chain_time})")
