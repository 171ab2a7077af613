"""The AIVM progress keys of `challenges.proof` (pure): from chain facts and job events, in any order."""

from __future__ import annotations

import random
from typing import Any

from domain.registration import validate_registration
from projections.chain.aivm_proof import JobEventRow, aivm_progress
from projections.chain.derive import StoredRegistration, derive
from projections.chain.facts import ChainFact

T0 = 1_700_000_000
ALICE, CREATOR = "0x" + "a1" * 20, "0x" + "c4" * 20
TASK, OLD_TASK = "0x" + "7a" * 32, "0x" + "70" * 32
RESPONSE_HASH = "0x" + "5e" * 32


def fact(contract: str, event: str, block: int, log_index: int = 0, **args: Any) -> ChainFact:
    return ChainFact(event_id=f"31337:{block}:{log_index}@7", chain_id=31337, challenge_id=7, contract=contract,
                     address="0x" + "22" * 20, event=event, block_number=block, block_hash=f"0x{block:064x}",
                     block_timestamp=T0 + block, tx_hash=f"0x{block:062x}{log_index:02x}", tx_index=log_index,
                     log_index=log_index, args=args, removed=False)


def job(kind: str, at: int, **payload: Any) -> JobEventRow:
    return JobEventRow(f"job:{kind}:{at}", kind, {"job_id": "job-7", "challenge_id": 7, **payload}, at)


CHAIN = [
    fact("ChallengePay", "ChallengeCreated", 10, id="7", creator=CREATOR, startTs=str(T0)),
    fact("AIVMInferenceV2", "InferenceRequestedV2", 20, requestId="3", taskId=TASK, requester="0x" + "ee" * 20),
    fact("ChallengeTaskRegistry", "BindingRecorded", 21, challengeId="7", subject=ALICE, requestId="3", taskId=TASK),
    fact("ChallengeTaskRegistry", "BindingRecorded", 21, 1, challengeId="7", subject=CREATOR, requestId="3",
         taskId=TASK),
    fact("AIVMInferenceV2", "InferenceCommitted", 22, requestId="3", worker="0x" + "ee" * 20),
    fact("AIVMInferenceV2", "PoIAttested", 23, taskId=TASK, count="1", resultHash=RESPONSE_HASH,
         transcriptHash="0x" + "00" * 32, slot="9"),
    fact("AIVMInferenceV2", "InferenceRevealed", 24, requestId="3", responseHash=RESPONSE_HASH,
         response='{"challengeId":"7","verified":true}'),
    fact("AIVMInferenceV2", "PoIAttested", 24, 1, taskId=TASK, count="2", resultHash=RESPONSE_HASH,
         transcriptHash="0x" + "ab" * 32, slot="9"),
    fact("AIVMInferenceV2", "InferenceFinalized", 24, 2, requestId="3", taskId=TASK, resultHash=RESPONSE_HASH),
]
JOBS = [
    job("JobQueued", 1_000, mode="threshold", participants=[CREATOR, ALICE]),
    job("AivmRequestSent", 2_000, request_id="3", task_id=TASK.upper().replace("0X", "0x"), tx_hash="0xrequest"),
    job("ProofSubmitted", 3_000, participant=CREATOR, request_id="3", task_id=TASK, tx_hash="0xproof1", ok=True),
    job("ProofFailed", 3_100, participant=ALICE, error="NotEligible", attempt=3, final=True),
    job("FinalizeFailed", 3_200, error="BeforeDeadline", chain_time=T0, attempt=1),
    job("FinalizeSent", 4_000, tx_hash="0xfinalize", outcome=1, already_finalized=False),
]


def test_the_keys_the_original_wrote_come_from_the_facts() -> None:
    progress = aivm_progress(CHAIN, JOBS, CREATOR)
    assert progress == {
        "taskBinding": {"schemaVersion": 1, "requestId": "3", "taskId": TASK},
        "requestTxHash": CHAIN[1].tx_hash,  # the chain's transaction of the request
        "bindTxHash": CHAIN[3].tx_hash,  # the subject's binding
        "verificationStatus": "finalized",
        "responseHash": RESPONSE_HASH, "response": '{"challengeId":"7","verified":true}',
        "poiResultHash": RESPONSE_HASH, "transcriptHash": "0x" + "ab" * 32, "slot": 9, "poiCount": 2,
        "proofsSubmitted": True, "submitProofTxHash": "0xproof1",
        "finalizationAttempted": True, "finalizationSuccess": True, "finalizeTxHash": "0xfinalize",
        "lastFinalizationError": "BeforeDeadline",
    }


def test_the_keys_grow_with_the_request_and_never_step_back() -> None:
    assert aivm_progress(CHAIN[:1], JOBS[:1], CREATOR) == {}
    requested = aivm_progress(CHAIN[:1], JOBS[:2], CREATOR)  # the worker reported it, the chain not yet
    assert requested == {"taskBinding": {"schemaVersion": 1, "requestId": "3", "taskId": TASK},
                         "requestTxHash": "0xrequest", "verificationStatus": "requested"}
    # a finalization fact read before the commit (topics interleave): still finalized
    assert aivm_progress([CHAIN[0], CHAIN[8], CHAIN[4]], JOBS[:2], CREATOR)["verificationStatus"] == "finalized"
    # not every participant settled: no proofsSubmitted yet
    assert "proofsSubmitted" not in aivm_progress(CHAIN, JOBS[:3], CREATOR)


def test_a_request_for_another_task_does_not_count() -> None:
    stale = [fact("AIVMInferenceV2", "InferenceCommitted", 30, requestId="2"),
             fact("AIVMInferenceV2", "PoIAttested", 30, 1, taskId=OLD_TASK, count="5", resultHash="0x" + "11" * 32,
                  transcriptHash="0x" + "00" * 32, slot="1")]
    progress = aivm_progress([*CHAIN[:3], *stale], JOBS[:2], CREATOR)
    assert progress["verificationStatus"] == "requested"
    assert "poiCount" not in progress


def test_challenges_proof_keeps_the_registration_keys_and_is_order_independent() -> None:
    doc_proof = {"kind": "aivm", "backend": "lightchain_poi", "modelId": "fitness.steps@1"}
    registration = validate_registration({
        "id": 7, "subject": CREATOR, "model_id": "fitness.steps@1", "params": {"rules": {}}, "proof": doc_proof,
        "timeline": {"startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-01-02T00:00:00Z"}})
    stored = StoredRegistration(registration, 1_000, 1_000)
    expected = derive(7, stored, CHAIN, None, JOBS)
    assert expected.challenge is not None
    assert expected.challenge.proof == {**doc_proof, **aivm_progress(CHAIN, JOBS, CREATOR)}
    assert expected.challenge.updated_at == (T0 + 24) * 1000  # the newest fact of the row
    facts, jobs = list(CHAIN), list(JOBS)
    for seed in range(10):
        random.Random(seed).shuffle(facts)
        random.Random(seed).shuffle(jobs)
        assert derive(7, stored, facts, None, jobs) == expected
