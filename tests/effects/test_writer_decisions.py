"""The chain writers' pure decisions: request plan, proof encoding, next worker step, finalizer actions."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_utils import keccak

from chain import aivm
from domain import job_state as js
from domain.challenge_state import (
    ChallengeCanceled,
    ChallengeRegistered,
    ChallengeState,
    apply_challenge_fact,
)
from effects import finalizer_state as fs
from effects import worker_state as ws
from effects.inputs import FinalizeRefused, InferenceFinalizedFact, ProofDone, ProofRefused, WinnerFact
from effects.request_plan import (
    Binding,
    InvalidJob,
    RequestRef,
    RequestState,
    binding_is_current,
    request_expiry,
    request_spec,
    retry_delay,
)

SUBJECT = "0x95A4CE3c93dBcDb9b3CdFb4CCAE6EFBDb4cCA217"
TASK_1 = bytes.fromhex("def28516618eea013b239c6ce9a5f273020d11a20f8f236d77af47895ddf386a")
OTHER = "0x" + "ab" * 20


def registered(challenge_id: int = 42, **proof: object) -> ChallengeState:
    fields = {"modelId": "apple_health.steps@1", "paramsHash": "0x" + keccak(text="params").hex(),
              "benchmarkHash": "0x" + keccak(text="bench").hex(), **proof}
    return apply_challenge_fact(None, ChallengeRegistered(
        challenge_id, params={}, proof=fields, timeline={}, model_id="fallback@1",
        model_hash="0x" + keccak(text="model").hex(), subject=SUBJECT))


# --- request plan ----------------------------------------------------------------------------------

def test_request_spec_uses_the_prompt_id_of_challenge_and_subject_and_the_params_hash_as_det_config():
    spec = request_spec(registered(), [SUBJECT.lower(), OTHER])
    assert spec.prompt_id.hex() == "ad3b6ff035210ba35a2e6dc35d846c8d77a4df17800c92d53ae15c3a94dab020"  # appendix A
    assert spec.model == "apple_health.steps@1" and spec.subject == SUBJECT.lower()
    assert spec.det_config_hash == keccak(text="params") and spec.model_digest == keccak(text="model")
    assert spec == request_spec(registered(), [OTHER, SUBJECT.lower()])  # deterministic, order-free
    assert spec.prompt_hash != request_spec(registered(), [OTHER]).prompt_hash


@pytest.mark.parametrize("proof", [{"paramsHash": None}, {"paramsHash": "0x" + "00" * 32}, {"benchmarkHash": "0x12"}])
def test_request_spec_refuses_missing_hashes(proof):
    with pytest.raises(InvalidJob):
        request_spec(registered(**proof), [SUBJECT])


def test_a_binding_is_current_only_when_every_field_matches():
    spec = request_spec(registered(), [SUBJECT])
    request = RequestRef(1, "0x" + TASK_1.hex())
    good = Binding(1, TASK_1, spec.model_digest, spec.det_config_hash, spec.benchmark_hash, 1, True)
    assert binding_is_current(good, spec, request)
    assert not binding_is_current(replace(good, request_id=2), spec, request)
    assert not binding_is_current(replace(good, benchmark_hash=aivm.ZERO32), spec, request)
    assert not binding_is_current(replace(good, exists=False), spec, request)


def test_retry_delay_doubles_and_is_capped():
    assert [retry_delay(n, 2.0, 10.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 10.0]
    assert retry_delay(5, 0.0, 10.0) == 0.0


def test_proof_from_a_binding_is_the_appendix_a_encoding():
    binding = Binding(1, TASK_1, keccak(text="model"), keccak(text="params"), keccak(text="bench"), 1, True)
    proof = fs.build_proof(binding, 42, SUBJECT.lower(), 1767225600)
    words = [proof[i:i + 32].hex() for i in range(0, len(proof), 32)]
    assert len(proof) == 416
    assert int(words[0], 16) == 1 and int(words[1], 16) == 1 and words[2] == TASK_1.hex()
    assert int(words[3], 16) == 42 and words[4] == "00" * 12 + SUBJECT[2:].lower()
    assert int(words[5], 16) == 1 and int(words[6], 16) == 0 and int(words[7], 16) == 0  # evidence hash zero
    assert words[8] == "be3e6c116bba9c49895cc92be713452dd1eb8370389080b591e534ff599d2b39"
    assert int(words[9], 16) == 0 and words[10].endswith("6955b900")
    assert words[11] == "191185346d2996711dd761c502ee7036b7bbf81137b5ba67ab29c6b6f57570a9"
    assert words[12] == "b40d1b5f6b77d2ba0d8b0410e0f8e6dfe0005ee7b9331709c2b66ef586805410"


# --- worker ----------------------------------------------------------------------------------------

def worker_view(*inputs: object) -> ws.WorkerView:
    view = replace(ws.WorkerView.initial(42), challenge=registered())
    for item in inputs:
        view = ws.apply_input(view, item)  # type: ignore[arg-type]
    return view


QUEUED = js.JobQueued("q", "job", 42, (SUBJECT,))


LIMITS = ws.Limits(max_attempts=3, max_requests=2)


def test_worker_steps_through_attempts_and_gives_up_after_max():
    assert ws.next_step(worker_view(QUEUED), LIMITS) == ws.StartAttempt(1)
    assert ws.next_step(worker_view(QUEUED, js.JobProcessing("p1", "job")), LIMITS) == ws.ResumeAttempt(1)
    failed_once = worker_view(QUEUED, js.JobProcessing("p1", "job"), js.JobFailed("f1", "job", "InsufficientFee"))
    assert ws.next_step(failed_once, LIMITS) == ws.StartAttempt(2)
    assert ws.next_step(failed_once, ws.Limits(1, 2)) == ws.GiveUp("InsufficientFee")
    dead = ws.apply_input(failed_once, js.JobDead("d", "job", "x"))
    assert isinstance(ws.next_step(dead, LIMITS), ws.Wait)
    requeued = ws.apply_input(dead, js.JobRequeued("rq", "job", "alice", "fee fixed"))
    assert ws.next_step(requeued, ws.Limits(1, 2)) == ws.StartAttempt(2)  # a fresh budget


def test_worker_does_not_request_for_a_canceled_challenge_or_job():
    assert isinstance(ws.next_step(worker_view(QUEUED, ChallengeCanceled(42)), LIMITS), ws.Wait)
    assert isinstance(ws.next_step(worker_view(QUEUED, js.JobCanceled("c", "job", "terminal")), LIMITS), ws.Wait)


TASK_HEX = "0x" + TASK_1.hex()
TASK_2 = "0x" + "22" * 32


def submitted_view(*more: object) -> ws.WorkerView:
    return worker_view(QUEUED, js.JobProcessing("p1", "job"), ws.RequestSent("r", "job", RequestRef(1, TASK_HEX)),
                       js.JobSubmitted("s", "job", TASK_HEX, 1),
                       ws.BindingRecorded("b", "job", SUBJECT.lower(), TASK_HEX), *more)


def test_worker_binds_participants_added_after_the_request():
    view = submitted_view()
    assert ws.next_step(view, LIMITS) == ws.WatchRequest(RequestRef(1, TASK_HEX))
    later = ws.apply_input(view, js.ParticipantsAdded("a", "job", (OTHER.upper().replace("0X", "0x"),)))
    assert ws.next_step(later, LIMITS) == ws.BindParticipants((OTHER,))
    finalized = ws.apply_input(view, InferenceFinalizedFact("f", TASK_HEX, 1_000, removed=False))
    assert isinstance(ws.next_step(finalized, LIMITS), ws.Wait)


def test_an_expired_request_is_re_requested_and_every_participant_bound_to_the_new_one():
    expired = submitted_view(js.JobExpired("x", "job", TASK_HEX, "request 1 expired", 1))
    assert expired.current_request is None
    assert ws.next_step(expired, LIMITS) == ws.StartAttempt(2)
    again = expired
    for item in (js.JobProcessing("p2", "job"), ws.RequestSent("r2", "job", RequestRef(2, TASK_2)),
                 js.JobSubmitted("s2", "job", TASK_2, 2)):
        again = ws.apply_input(again, item)
    assert again.current_request == RequestRef(2, TASK_2)
    assert ws.next_step(again, LIMITS) == ws.BindParticipants((SUBJECT.lower(),))
    # the worker folds its own events again when they come back from the topic: nothing regresses
    redelivered = ws.apply_input(again, ws.RequestSent("r", "job", RequestRef(1, TASK_HEX)))
    assert redelivered.current_request == RequestRef(2, TASK_2)


def test_the_job_dies_after_max_requests_expired():
    view = submitted_view(js.JobExpired("x1", "job", TASK_HEX, "request 1 expired", 1), js.JobProcessing("p2", "job"),
                          ws.RequestSent("r2", "job", RequestRef(2, TASK_2)), js.JobSubmitted("s2", "job", TASK_2, 2),
                          js.JobExpired("x2", "job", TASK_2, "request 2 expired", 2))
    step = ws.next_step(view, LIMITS)
    assert isinstance(step, ws.GiveUp) and step.error.startswith("2 AIVM request(s) expired")
    assert ws.next_step(view, ws.Limits(3, 3)) == ws.StartAttempt(3)


# --- finalizer -------------------------------------------------------------------------------------

def finalizer_view(*inputs: object) -> fs.FinalizerView:
    view = fs.FinalizerView.initial(42)
    for item in (QUEUED, js.ParticipantsAdded("a", "job", (OTHER,)), js.JobSubmitted("s", "job", "0xt", 1), *inputs):
        view = fs.apply_input(view, item)  # type: ignore[arg-type]
    return view


BOUND = (ws.BindingRecorded("b1", "job", SUBJECT.lower(), "0xt"), ws.BindingRecorded("b2", "job", OTHER, "0xt"))
FINALIZED = InferenceFinalizedFact("f", "0xt", 1_000, removed=False)


def test_no_proofs_before_the_inference_is_finalized_then_one_per_bound_participant():
    assert fs.next_actions(finalizer_view(*BOUND), 900, 5_000) == []
    actions = fs.next_actions(finalizer_view(*BOUND, FINALIZED), 1_000, 5_000)
    assert actions == [fs.SubmitProof(p, "0xt", 1_000, 1) for p in sorted([SUBJECT.lower(), OTHER])]
    retracted = replace(FINALIZED, removed=True)
    assert fs.next_actions(finalizer_view(*BOUND, FINALIZED, retracted), 1_000, 5_000) == []


def test_unbound_reported_and_given_up_participants_are_not_proved():
    view = finalizer_view(BOUND[0], FINALIZED)
    assert [a.participant for a in fs.next_actions(view, 1_000, 5_000)] == [SUBJECT.lower()]
    done = fs.apply_input(view, ProofDone("d", SUBJECT.lower(), True))
    assert fs.next_actions(done, 1_000, 5_000) == []
    refused = fs.apply_input(view, ProofRefused("r", SUBJECT.lower(), "NotEligible", 1, True))
    assert fs.next_actions(refused, 1_000, 5_000) == []
    retried = fs.apply_input(view, ProofRefused("r", SUBJECT.lower(), "rpc", 1, False))
    assert fs.next_actions(retried, 1_000, 5_000) == [fs.SubmitProof(SUBJECT.lower(), "0xt", 1_000, 2)]
    winner_elsewhere = finalizer_view(FINALIZED, WinnerFact("w", OTHER, removed=False))
    assert [a.participant for a in fs.next_actions(winner_elsewhere, 1_000, 5_000)] == [OTHER]


def test_finalize_waits_for_chain_time_and_after_a_refusal_for_a_later_block():
    proved = finalizer_view(*BOUND, FINALIZED, ProofDone("d1", SUBJECT.lower(), True), ProofDone("d2", OTHER, True))
    assert fs.next_actions(proved, 4_999, 5_000) == []
    assert fs.next_actions(proved, 5_000, 5_000) == [fs.Finalize(1, 5_000)]
    refused = fs.apply_input(proved, FinalizeRefused("x", "BeforeDeadline", 5_000, 1))
    assert fs.next_actions(refused, 5_000, 5_000) == []
    assert fs.next_actions(refused, 5_012, 5_000) == [fs.Finalize(2, 5_012)]
    no_inference = finalizer_view()
    assert fs.next_actions(no_inference, 5_000, 5_000) == [fs.Finalize(1, 5_000)]


def test_finalize_never_preempts_an_owed_proof_it_gives_each_a_last_chance_first():
    view = finalizer_view(*BOUND, FINALIZED)
    assert fs.next_actions(view, 4_999, 5_000) == [
        fs.SubmitProof(p, "0xt", 1_000, 1) for p in sorted([SUBJECT.lower(), OTHER])]
    assert fs.next_actions(view, 5_000, 5_000) == [
        *[fs.SubmitProof(p, "0xt", 1_000, 1, last_chance=True) for p in sorted([SUBJECT.lower(), OTHER])],
        fs.Finalize(1, 5_000)]


def test_proofs_wait_for_the_re_request_and_never_use_an_expired_task():
    """The first request expired (its InferenceFinalized can never come; one from a stale view must
    not count), the worker re-requested: proofs follow the new task's InferenceFinalized and bindings."""
    expired = js.JobExpired("x", "job", "0xt", "request 1 expired", 1)
    view = finalizer_view(*BOUND, expired, js.JobSubmitted("s2", "job", "0xt2", 2))
    assert fs.next_actions(fs.apply_input(view, FINALIZED), 1_000, 5_000) == []  # the old task's
    assert fs.next_actions(view, 4_000, 5_000) == []  # the re-request is pending; before the deadline: wait
    done = fs.apply_input(view, InferenceFinalizedFact("f2", "0xt2", 2_000, removed=False))
    assert fs.next_actions(done, 2_000, 5_000) == []  # not bound to the new task yet
    bound = fs.apply_input(done, ws.BindingRecorded("b3", "job", OTHER, "0xt2"))
    assert fs.next_actions(bound, 2_000, 5_000) == [fs.SubmitProof(OTHER, "0xt2", 2_000, 1)]
    assert fs.next_actions(view, 5_000, 5_000) == [fs.Finalize(1, 5_000)]  # at the deadline it cannot help


# --- request expiry ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "chain_time", "expired"), [
    (aivm.STATUS_REQUESTED, 100, False), (aivm.STATUS_REQUESTED, 101, True),
    (aivm.STATUS_COMMITTED, 200, False), (aivm.STATUS_COMMITTED, 201, True),
    (aivm.STATUS_REVEALED, 300, False), (aivm.STATUS_REVEALED, 301, True), (aivm.STATUS_DISPUTED, 301, True),
    (aivm.STATUS_FINALIZED, 10_000, False), (aivm.STATUS_CANCELLED, 50, True), (aivm.STATUS_TIMED_OUT, 50, True),
    (aivm.STATUS_NONE, 10_000, False),
])
def test_a_request_expires_when_it_misses_the_deadline_of_its_next_step(status, chain_time, expired):
    state = RequestState(status, commit_deadline=100, reveal_deadline=200, finalize_deadline=300)
    reason = request_expiry(state, chain_time)
    assert (reason is not None) is expired
    if status == aivm.STATUS_COMMITTED and expired:
        assert reason == "AIVM request still Committed after its reveal deadline (200; chain time 201)"


def test_finalized_elsewhere_is_reported_once_and_canceled_needs_nothing():
    from domain.challenge_state import ChallengeCreated, ChallengeFinalized

    created = ChallengeCreated(42, SUBJECT, 100)
    elsewhere = finalizer_view(created, ChallengeFinalized(42, 1))
    assert fs.next_actions(elsewhere, 5_000, None) == [fs.ReportFinalized(1)]
    from effects.inputs import FinalizeDone
    assert fs.next_actions(fs.apply_input(elsewhere, FinalizeDone("d", 1)), 5_000, None) == []
    assert fs.next_actions(finalizer_view(created, ChallengeCanceled(42)), 5_000, 5_000) == []
